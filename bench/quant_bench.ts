/**
 * Quantized matvec speed: GB/s of weight bytes for y = W·x with W 4096×4096,
 * per GGML type, edgemoe (each library variant this CPU runs, 1 thread)
 * beside llama.cpp's CPU `vec_dot` over the same rows (1 thread, the same
 * bytes, activations converted once per call in both).
 *
 *   deno run -A bench/quant_bench.ts [--reps N]
 *
 * A last column runs the widest variant on a 2-thread pool (rows split).
 * Prints a Markdown table. Not a Deno.bench: each cell is the best of N
 * timed matvecs, the number to hold against memory bandwidth.
 */
import { EdgeMoeError, GgmlType, type GgmlTypeName, NativeLibrary } from "../mod.ts";
import { Ggml } from "../tests/oracle/ggml.ts";
import { parseArgs } from "../src/std/cli.ts";

const args = parseArgs(Deno.args, { string: ["reps", "types"], default: { reps: "10", types: "" } });
const reps = Number(args.reps);
const rows = 4096, cols = 4096;
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
const types = args.types ? args.types.split(",") as GgmlTypeName[] : allTypes;

/**
 * Best-of-`reps` GB/s of `bytes` moved by each of `fns`, run interleaved
 * (one of each per round) so a busy machine slows all of them alike.
 */
function gbps(bytes: number, fns: (() => void)[]): number[] {
  const best = fns.map((fn) => (fn(), Infinity));
  for (let i = 0; i < reps; i++) {
    fns.forEach((fn, k) => {
      const t0 = performance.now();
      fn();
      best[k] = Math.min(best[k], performance.now() - t0);
    });
  }
  return best.map((ms) => bytes / (ms / 1000) / 1e9);
}

const libs = [NativeLibrary.open({ variant: "base" })];
try {
  libs.push(NativeLibrary.open({ variant: "avx512" }));
} catch (e) {
  if (!(e instanceof EdgeMoeError)) throw e;
}
using ggml = Ggml.open();
const x = new Float32Array(cols).map((_, i) => Math.sin(i * 0.1));
const wf = new Float32Array(rows * cols).map((_, i) => Math.cos(i * 0.37) * (1 + (i % 7)));
const y = new Float32Array(rows);
const wide = libs[libs.length - 1];
using pool = wide.createPool(2);

console.log(`matvec ${rows}x${cols}, 1 thread, GB/s of weights (best of ${reps}); llama.cpp: ${ggml.cpuLibrary}\n`);
const heads = [...libs.map((l) => `edgemoe ${l.variant}`), "llama.cpp vec_dot", "ours/llama.cpp"];
console.log(`| type | MiB | ${heads.join(" | ")} | edgemoe ${wide.variant} 2 threads |`);
console.log(`|---|---|${heads.map(() => "---|").join("")}---|`);
for (const type of types) {
  const w = libs[0].quantize(type, wf);
  const all = gbps(w.length, [
    ...libs.map((lib) => () => lib.matvec(type, w, x, y, rows, cols)),
    () => void ggml.matvec(GgmlType[type], w, x, rows, cols),
    () => wide.matvec(type, w, x, y, rows, cols, pool),
  ]);
  const ours = all.slice(0, libs.length), ref = all[libs.length], two = all[libs.length + 1];
  const best = Math.max(...ours);
  console.log(
    `| ${type} | ${(w.length / 2 ** 20).toFixed(1)} | ${ours.map((v) => v.toFixed(2)).join(" | ")} | ${
      ref.toFixed(2)
    } | ${(best / ref).toFixed(2)}x | ${two.toFixed(2)} |`,
  );
}
pool.close();
for (const lib of libs) lib.close();
