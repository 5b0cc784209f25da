/**
 * Quantized matvec speed against llama.cpp: GB/s of weight bytes for
 * y = W·x, per GGML type and matrix shape, edgemoe (each library variant
 * this CPU runs, 1 thread, and the widest on a 2-thread pool) beside
 * llama.cpp's CPU `vec_dot` over the same rows (1 thread, the same bytes,
 * activations converted once per call in both), with the machine's stream
 * read bandwidth measured in the same run.
 *
 *   deno run -A bench/quant_bench.ts [--rounds N] [--types q4_k,q8_0] [--shapes 4096x4096,768x2048]
 *                                    [--cold-mib 256] [--no-cold]
 *
 * Two modes per shape:
 * - hot: the same matrix again and again (it stays in L2/L3): the kernels'
 *   own speed, the fair comparison of instruction streams;
 * - cold: `--cold-mib` of distinct copies of the matrix, one after another,
 *   so the weights come from DRAM: the number to hold against memory
 *   bandwidth, which is measured within the same rounds (see `memRefs`).
 *
 * Every cell is the median of `--rounds` rounds; each round runs every
 * contender once, interleaved (starting with a different one each round), so
 * load from other processes slows all alike.
 * Prints Markdown.
 */
import { EdgeMoeError, GgmlType, type GgmlTypeName, NativeLibrary } from "../mod.ts";
import { Ggml } from "../tests/oracle/ggml.ts";
import { parseArgs } from "../src/std/cli.ts";

const args = parseArgs(Deno.args, {
  string: ["rounds", "types", "shapes", "cold-mib"],
  boolean: ["no-cold"],
  default: { rounds: "7", types: "", shapes: "4096x4096,768x2048", "cold-mib": "256", "no-cold": false },
});
const str = (k: string) => String(args[k]);
const rounds = Number(str("rounds"));
const coldBytes = Number(str("cold-mib")) * 2 ** 20;
const allTypes: GgmlTypeName[] = [
  "f32",
  "f16",
  "bf16",
  "q8_0",
  "q5_1",
  "q5_0",
  "q4_1",
  "q4_0",
  "q6_k",
  "q5_k",
  "q4_k",
  "q3_k",
  "q2_k",
];
const types = str("types") ? str("types").split(",") as GgmlTypeName[] : allTypes;
const shapes = str("shapes").split(",").map((s) => s.split("x").map(Number) as [number, number]);

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/**
 * Median milliseconds of each of `fns` over the rounds. `fns[k](i)` runs
 * call i of a batch of `calls`.
 */
function measure(calls: number, fns: ((i: number) => void)[]): number[] {
  const ms: number[][] = fns.map(() => []);
  // One untimed round, then each round starts with the next contender, so none is always first.
  for (let r = -1; r < rounds; r++) {
    for (let j = 0; j < fns.length; j++) {
      const k = (Math.max(r, 0) + j) % fns.length;
      const t0 = performance.now();
      for (let i = 0; i < calls; i++) fns[k](i);
      if (r >= 0) ms[k].push(performance.now() - t0);
    }
  }
  return ms.map(median);
}

const gbps = (bytes: number, ms: number) => bytes / (ms / 1000) / 1e9;

function loadavg(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  } catch {
    return "?";
  }
}

function commit(): string {
  const out = new Deno.Command("git", { args: ["rev-parse", "--short=12", "HEAD"], stdout: "piped", stderr: "null" })
    .outputSync();
  return out.success ? new TextDecoder().decode(out.stdout).trim() : "?";
}

const libs = [NativeLibrary.open({ variant: "base" })];
try {
  libs.push(NativeLibrary.open({ variant: "avx512" }));
} catch (e) {
  if (!(e instanceof EdgeMoeError)) throw e;
}
using ggml = Ggml.open();
const wide = libs[libs.length - 1];
using pool = wide.createPool(2);

/**
 * Memory read bandwidth, measured inside every cold measurement (the load
 * from other processes changes it from second to second): 1 thread, the f32
 * dot product over two 128 MiB vectors (as bench/compare.ts); 2 threads, the
 * f32 matvec over a 256 MiB matrix on the pool.
 */
const memA = new Float32Array(2 ** 25).fill(1), memB = new Float32Array(2 ** 25).fill(2);
const memRows = 16384, memCols = 4096;
const memW = new Uint8Array(memRows * memCols * 4).fill(0x3f);
const memX = new Float32Array(memCols).fill(1), memY = new Float32Array(memRows);
const memRefs = [
  () => void wide.dotF32(memA, memB),
  () => wide.matvec("f32", memW, memX, memY, memRows, memCols, pool),
];
const memBytes = [memA.byteLength * 2, memW.length];

const load0 = loadavg();
console.log(
  `# Quantized matvec, edgemoe vs llama.cpp (${new Date().toISOString().slice(0, 16)}Z, commit ${commit()})\n`,
);
console.log(`llama.cpp: ${ggml.cpuLibrary}; edgemoe variants: ${libs.map((l) => l.variant).join(", ")}`);
console.log(`load average at start: ${load0}; median of ${rounds} interleaved rounds; GB/s of weight bytes\n`);

const heads = [...libs.map((l) => `ours ${l.variant.replace("x86_64-", "")}`), "llama.cpp", "ratio", "ours 2 thr"];
console.log(`| type | shape | mode | MiB | ${heads.join(" | ")} | mem bw 1 / 2 thr | % of mem bw 1 / 2 thr |`);
console.log(`|---|---|---|---|${heads.map(() => "---|").join("")}---|---|`);
for (const [rows, cols] of shapes) {
  const x = new Float32Array(cols).map((_, i) => Math.sin(i * 0.1));
  const wf = new Float32Array(rows * cols).map((_, i) => Math.cos(i * 0.37) * (1 + (i % 7)));
  const y = new Float32Array(rows);
  for (const type of types) {
    const w = libs[0].quantize(type, wf);
    const modes: [string, Uint8Array[]][] = [["hot", [w]]];
    if (!args["no-cold"]) {
      const n = Math.max(2, Math.ceil(coldBytes / w.length));
      modes.push(["cold", Array.from({ length: n }, () => w.slice())]);
    }
    for (const [mode, ws] of modes) {
      // Hot batches repeat the one matrix for ≥ 2 MiB per timing, cold ones stream every copy once.
      const calls = mode === "hot" ? Math.max(1, Math.ceil(2 ** 21 / w.length)) : ws.length;
      const pick = (i: number) => ws[i % ws.length];
      const refs = mode === "cold" ? memRefs.map((f) => (i: number) => i === 0 && f()) : [];
      const ms = measure(calls, [
        ...libs.map((lib) => (i: number) => lib.matvec(type, pick(i), x, y, rows, cols)),
        (i: number) => void ggml.matvec(GgmlType[type], pick(i), x, rows, cols),
        (i: number) => wide.matvec(type, pick(i), x, y, rows, cols, pool),
        ...refs,
      ]);
      const all = ms.slice(0, libs.length + 2).map((m) => gbps(w.length * calls, m));
      const ours = all.slice(0, libs.length), ref = all[libs.length], two = all[libs.length + 1];
      let mem = "", pct = "";
      if (mode === "cold") {
        const [m1, m2] = ms.slice(libs.length + 2).map((m, k) => gbps(memBytes[k], m));
        mem = `${m1.toFixed(1)} / ${m2.toFixed(1)}`;
        pct = `${(100 * ours.at(-1)! / m1).toFixed(0)}% / ${(100 * two / m2).toFixed(0)}%`;
      }
      console.log(
        `| ${type} | ${rows}x${cols} | ${mode} | ${(w.length / 2 ** 20).toFixed(1)} | ${
          ours.map((v) => v.toFixed(1)).join(" | ")
        } | ${ref.toFixed(1)} | ${(ours.at(-1)! / ref).toFixed(2)}x | ${two.toFixed(1)} | ${mem} | ${pct} |`,
      );
    }
  }
}
console.log(`\nload average at end: ${loadavg()}`);
pool.close();
for (const lib of libs) lib.close();
