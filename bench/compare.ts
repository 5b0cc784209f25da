/**
 * edgemoe and llama.cpp side by side on the same GGUF file, the same thread
 * count, the same tests, under the same memory cap, in one run.
 *
 *   deno run -A bench/compare.ts -m MODEL.gguf [--pack MODEL.pack.gguf] [--cap 7GiB,3.5GiB] \
 *     [-p 16] [-n 16] [-r 2] [--threads 2] [--cold] [--disk-gbps X] [--mem-gbps X] [--results bench/results.tsv]
 *
 * Each engine runs in a fresh subprocess (this file with `--worker`) placed,
 * before it starts, into a cgroup v1 memory controller group
 * (`<this process's memory cgroup>/edgemoe-bench-PID`, `memory.limit_in_bytes`
 * = the cap; v1 charges page cache to the group, so mmap'd and buffered file
 * pages count). On cgroup v2 the group gets `memory.max` instead. `--cold`
 * drops the page cache (`echo 3 > /proc/sys/vm/drop_caches`) before every run;
 * with a cap, runs are always cold, since v1 does not charge pages already
 * cached by another group.
 *
 * Engines: `edgemoe-pack` (the pack) and `edgemoe-gguf` (the plain GGUF:
 * three reads per expert), both with the io_uring store under a cap and the
 * engine's default store without one (every expert in RAM when it fits, as a
 * user gets), and `llama.cpp`
 * (libllama from the pinned npm package, mmap, through tests/oracle/llama.ts).
 * The physical limits printed beside them: decode ≤ disk bandwidth / bytes
 * read from disk per token, and ≤ memory bandwidth / bytes of weights touched
 * per token. Disk bandwidth is measured with `dd iflag=direct` on the model
 * file, memory bandwidth with the native f32 dot product over 512 MiB.
 *
 * @module
 */
import {
  benchTokens,
  buildCommit,
  cpuInfo,
  diskReadBytes,
  peakRss,
  resetPeakRss,
  runBench,
} from "../src/bench/bench.ts";
import { type BenchRecord, formatBench, meanSd } from "../src/bench/format.ts";
import { EdgeMoeError } from "../src/errors.ts";
import { NativeLibrary } from "../ffi/native.ts";
import { GgufFile } from "../src/gguf/mod.ts";
import { parseArgs } from "../src/std/cli.ts";
import { formatSize, parseSize } from "../src/store/budget.ts";
import { LlamaModel } from "../tests/oracle/llama.ts";

const ENGINES = ["llama.cpp", "edgemoe-pack", "edgemoe-gguf"] as const;
type EngineName = typeof ENGINES[number];

interface WorkerArgs {
  engine: EngineName;
  model: string;
  nPrompt: number;
  nGen: number;
  reps: number;
  threads: number;
  budget: number;
}

/** llama-bench's tests through libllama: ppN as one llama_decode, tgN as N single-token decodes. */
function llamaBench(a: WorkerArgs): BenchRecord[] {
  const t0 = performance.now();
  using m = LlamaModel.load(a.model, { threads: a.threads, nCtx: a.nPrompt + a.nGen + 1 });
  const loadMs = performance.now() - t0;
  m.greedy(benchTokens(1, m.nVocab, 7), 0);
  const records: BenchRecord[] = [];
  const tests = [[a.nPrompt, 0], [0, a.nGen]].filter(([p, g]) => p + g > 0);
  for (const [index, [nPrompt, nGen]] of tests.entries()) {
    resetPeakRss();
    const disk0 = diskReadBytes();
    const times: number[] = [];
    for (let rep = 0; rep < a.reps; rep++) {
      const ids = benchTokens(nPrompt + nGen, m.nVocab, 1 + rep + 1000 * index);
      const s = performance.now();
      // greedy(p, 0) is one batched decode of p with only the last logits (llama-bench's prompt test);
      // greedy([t], n - 1) is n single-token decodes (its generation test, plus an argmax per token).
      if (nPrompt > 0) m.greedy(ids, 0);
      else m.greedy(ids.slice(0, 1), nGen - 1);
      times.push((performance.now() - s) * 1e6);
    }
    const n = (nPrompt + nGen) * a.reps;
    const ns = meanSd(times), ts = meanSd(times.map((x) => ((nPrompt + nGen) * 1e9) / x));
    records.push({
      build_commit: "llama.cpp (node-llama-cpp 3.22.1 libllama)",
      cpu_info: cpuInfo(),
      kernel_variant: "ggml-cpu",
      cpu_features: "",
      model_filename: a.model,
      model_type: `load ${(loadMs / 1000).toFixed(1)} s`,
      model_size: Deno.statSync(a.model).size,
      model_n_params: 0,
      n_threads: a.threads,
      store: "mmap",
      predictor: "-",
      mem_budget: a.budget,
      n_prompt: nPrompt,
      n_gen: nGen,
      test_time: new Date().toISOString(),
      repetitions: a.reps,
      avg_ns: Math.round(ns.mean),
      stddev_ns: Math.round(ns.sd),
      avg_ts: ts.mean,
      stddev_ts: ts.sd,
      expert_hit_rate: -1,
      bytes_read_per_token: 0,
      disk_read_bytes_per_token: (diskReadBytes() - disk0) / n,
      io_wait_ns_per_token: 0,
      prefetch_precision: -1,
      prefetch_recall: -1,
      peak_rss_bytes: peakRss(),
    });
  }
  return records;
}

function worker(a: WorkerArgs): void {
  const records = a.engine === "llama.cpp" ? llamaBench(a) : runBench(a.model, {
    nPrompt: [a.nPrompt],
    nGen: [a.nGen],
    repetitions: a.reps,
    threads: a.threads,
    // Under a cap, a disk store (io_uring); without one, the engine's default: all experts in RAM when they fit.
    engine: a.budget > 0
      ? { store: "uring", memBudget: a.budget, nCtx: a.nPrompt + a.nGen + 1 }
      : { nCtx: a.nPrompt + a.nGen + 1 },
  });
  console.log(JSON.stringify(records));
}

/** The memory cgroup of this process (v1: the `memory` controller's path; v2: the unified path). */
function cgroupRoot(): { dir: string; v1: boolean } {
  const lines = Deno.readTextFileSync("/proc/self/cgroup").split("\n");
  const v1 = lines.find((l) => /^\d+:memory:/.test(l));
  if (v1 && Deno.statSync("/sys/fs/cgroup/memory").isDirectory) {
    return { dir: `/sys/fs/cgroup/memory${v1.split(":")[2].replace(/\/$/, "")}`, v1: true };
  }
  const v2 = lines.find((l) => l.startsWith("0::"));
  if (v2) return { dir: `/sys/fs/cgroup${v2.slice(3).replace(/\/$/, "")}`, v1: false };
  throw new EdgeMoeError("unsupported", "cgroup", "no memory cgroup (neither v1 memory controller nor v2) found");
}

interface Capped {
  dir: string;
  v1: boolean;
  peak(): number;
  [Symbol.dispose](): void;
}

/** A fresh memory cgroup limited to `cap` bytes (page cache included), removed on dispose. */
function makeCgroup(cap: number, tag: string): Capped {
  const root = cgroupRoot();
  const dir = `${root.dir}/edgemoe-bench-${Deno.pid}-${tag}`;
  Deno.mkdirSync(dir);
  if (root.v1) Deno.writeTextFileSync(`${dir}/memory.limit_in_bytes`, String(cap));
  else Deno.writeTextFileSync(`${dir}/memory.max`, String(cap));
  return {
    dir,
    v1: root.v1,
    peak() {
      try {
        return Number(Deno.readTextFileSync(`${dir}/${root.v1 ? "memory.max_usage_in_bytes" : "memory.peak"}`));
      } catch {
        return 0;
      }
    },
    [Symbol.dispose]() {
      // rmdir fails while pages are still charged on some kernels; force_empty (v1) frees them first.
      if (root.v1) {
        try {
          Deno.writeTextFileSync(`${dir}/memory.force_empty`, "0");
        } catch { /* best effort */ }
      }
      for (let i = 0; i < 50; i++) {
        try {
          Deno.removeSync(dir);
          return;
        } catch {
          const until = Date.now() + 100;
          while (Date.now() < until) { /* wait for the last task to leave */ }
        }
      }
      console.error(`compare: could not remove cgroup ${dir}`);
    },
  };
}

function dropCaches(): void {
  Deno.writeTextFileSync("/proc/sys/vm/drop_caches", "3");
}

/** Sequential O_DIRECT read of up to 2 GiB of `path` with `dd`, in GB/s. */
function measureDisk(path: string): number {
  dropCaches();
  const out = new Deno.Command("dd", {
    args: [`if=${path}`, "of=/dev/null", "bs=4M", "count=512", "iflag=direct"],
    stdout: "null",
    stderr: "piped",
  }).outputSync();
  const text = new TextDecoder().decode(out.stderr);
  const m = /(\d+) bytes .* copied, ([\d.]+) s/.exec(text);
  if (!out.success || !m) throw new EdgeMoeError("io", "measure disk", `dd failed: ${text.trim()}`);
  return Number(m[1]) / Number(m[2]) / 1e9;
}

/** Single-thread memory read bandwidth: the native f32 dot product over two 256 MiB vectors, in GB/s. */
function measureMemory(): number {
  using lib = NativeLibrary.open();
  const n = 64 << 20;
  const a = new Float32Array(n).fill(1), b = new Float32Array(n).fill(2);
  lib.dotF32(a, b);
  let best = Infinity;
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    lib.dotF32(a, b);
    best = Math.min(best, performance.now() - t);
  }
  return (8 * n) / (best / 1000) / 1e9;
}

/** Bytes of weights one decoded token touches: resident weights (one embedding row) + top-k experts per layer. */
function bytesTouchedPerToken(path: string): number {
  using f = GgufFile.open(path);
  const a = f.getString("general.architecture");
  const used = f.getInt(`${a}.expert_used_count`), nExpert = f.getInt(`${a}.expert_count`);
  let bytes = 0;
  for (const t of f.tensors) {
    if (/_exps\.weight$/.test(t.name)) bytes += (t.bytes / nExpert) * used;
    else if (t.name === "token_embd.weight") bytes += t.bytes / t.dims[1];
    else bytes += t.bytes;
  }
  return bytes;
}

async function runWorker(w: WorkerArgs, cap: number, cold: boolean): Promise<{ records: BenchRecord[]; peak: number }> {
  if (cold || cap > 0) dropCaches();
  const args = [
    "run",
    "-A",
    "--unstable-no-legacy-abort",
    new URL(import.meta.url).pathname,
    "--worker",
    w.engine,
    "-m",
    w.model,
    "-p",
    String(w.nPrompt),
    "-n",
    String(w.nGen),
    "-r",
    String(w.reps),
    "--threads",
    String(w.threads),
    "--budget",
    String(w.budget),
  ];
  const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  const deno = Deno.execPath();
  using group = cap > 0 ? makeCgroup(cap, w.engine) : undefined;
  // The shell joins the group before exec'ing the worker: every byte the worker maps or caches is charged.
  const script = `${group ? `echo $$ > ${quote(`${group.dir}/cgroup.procs`)} && ` : ""}exec ${quote(deno)} ${
    args.map(quote).join(" ")
  }`;
  const out = await new Deno.Command("sh", { args: ["-c", script], stdout: "piped", stderr: "piped" }).output();
  const stdout = new TextDecoder().decode(out.stdout).trim();
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-5).join(" | ");
    const oom = out.signal === "SIGKILL" ? " (killed: out of memory under the cap?)" : "";
    throw new EdgeMoeError("io", `run ${w.engine}`, `worker failed with ${out.signal ?? out.code}${oom}: ${err}`);
  }
  return { records: JSON.parse(stdout.split("\n").at(-1)!), peak: group?.peak() ?? 0 };
}

const TSV_HEADER =
  "date\tcommit\tcpu\tmodel\tmodel_bytes\tcap_bytes\tcache\tengine\tthreads\ttest\tavg_ts\tstddev_ts\t" +
  "disk_read_bytes_per_token\tcgroup_peak_bytes\tpeak_rss_bytes\texpert_hit_rate\tdisk_gbps\tmem_gbps\tio_bound_ts\tmem_bound_ts\n";

const USAGE =
  `usage: deno run -A bench/compare.ts -m MODEL.gguf [--pack PACK] [--cap SIZE[,SIZE...]] [-p N] [-n N] [-r R]
         [--threads T] [--engines ${ENGINES.join(",")}] [--cold] [--disk-gbps X] [--mem-gbps X] [--results FILE]`;

async function main(argv: string[]): Promise<number> {
  const a = parseArgs(argv, {
    string: [
      "model",
      "pack",
      "cap",
      "n-prompt",
      "n-gen",
      "repetitions",
      "threads",
      "engines",
      "disk-gbps",
      "mem-gbps",
      "results",
      "worker",
      "budget",
    ],
    boolean: ["cold", "help"],
    alias: { m: "model", p: "n-prompt", n: "n-gen", r: "repetitions", h: "help" },
  });
  if (a.help || typeof a.model !== "string") {
    console.log(USAGE);
    return a.help ? 0 : 2;
  }
  const int = (name: string, d: number) => {
    const v = a[name] === undefined ? d : Number(a[name]);
    if (!Number.isSafeInteger(v) || v < 0) {
      throw new EdgeMoeError("invalid_argument", "compare", `--${name}: ${a[name]}`);
    }
    return v;
  };
  const base = {
    nPrompt: int("n-prompt", 16),
    nGen: int("n-gen", 16),
    reps: Math.max(1, int("repetitions", 2)),
    threads: Math.max(1, int("threads", 2)),
  };
  if (typeof a.worker === "string") {
    worker({ ...base, engine: a.worker as EngineName, model: a.model, budget: int("budget", 0) });
    return 0;
  }
  // llama.cpp first, so the others' rows can show the ratio to it.
  const engines = (typeof a.engines === "string" ? a.engines.split(",") : [...ENGINES])
    .sort((x, y) => Number(y === "llama.cpp") - Number(x === "llama.cpp")) as EngineName[];
  for (const e of engines) {
    if (!ENGINES.includes(e)) throw new EdgeMoeError("invalid_argument", "compare", `unknown engine "${e}"`);
    if (e === "edgemoe-pack" && typeof a.pack !== "string") {
      throw new EdgeMoeError("invalid_argument", "compare", "edgemoe-pack needs --pack PACK (edgemoe convert)");
    }
  }
  const caps = typeof a.cap === "string" ? a.cap.split(",").map((c) => (c === "none" ? 0 : parseSize(c))) : [0];
  const modelBytes = Deno.statSync(a.model).size;
  const diskGBps = a["disk-gbps"] !== undefined ? Number(a["disk-gbps"]) : measureDisk(a.model);
  const memGBps = a["mem-gbps"] !== undefined ? Number(a["mem-gbps"]) : measureMemory();
  const touched = bytesTouchedPerToken(a.model);
  const commit = buildCommit();
  console.log(
    `# ${a.model}: ${formatSize(modelBytes)}; ${formatSize(touched)} of weights per token; disk ${
      diskGBps.toFixed(2)
    } GB/s (O_DIRECT, sequential), memory ${
      memGBps.toFixed(1)
    } GB/s (one thread); ${base.threads} threads; commit ${commit}`,
  );
  const rows: string[][] = [];
  const results = typeof a.results === "string" ? a.results : new URL("./results.tsv", import.meta.url).pathname;
  let appended = 0;
  /** Each run's rows are appended as soon as it ends (a long run interrupted keeps what it measured). */
  const append = (lines: string[]) => {
    let exists = true;
    try {
      Deno.statSync(results);
    } catch {
      exists = false;
    }
    Deno.writeTextFileSync(results, (exists ? "" : TSV_HEADER) + lines.map((l) => l + "\n").join(""), { append: true });
    appended += lines.length;
  };
  for (const cap of caps) {
    const tps = new Map<string, number>();
    for (const engine of engines) {
      const model = engine === "edgemoe-pack" ? a.pack as string : a.model;
      const budget = cap > 0 ? Math.floor(cap * 0.9) : 0;
      let result: { records: BenchRecord[]; peak: number };
      try {
        result = await runWorker({ ...base, engine, model, budget }, cap, Boolean(a.cold));
      } catch (e) {
        console.error(`compare: ${engine} under cap ${cap ? formatSize(cap) : "none"}: ${(e as Error).message}`);
        rows.push([cap ? formatSize(cap) : "none", engine, "failed", "", "", "", "", "", ""]);
        continue;
      }
      console.error(formatBench(result.records, "md"));
      const tsv: string[] = [];
      for (const r of result.records) {
        const test = r.n_gen === 0 ? `pp${r.n_prompt}` : `tg${r.n_gen}`;
        const missed = r.disk_read_bytes_per_token;
        const ioBound = missed > 0 ? (diskGBps * 1e9) / missed : Infinity;
        const memBound = (memGBps * 1e9) / touched;
        tps.set(`${engine}/${test}`, r.avg_ts);
        const ref = tps.get(`llama.cpp/${test}`);
        rows.push([
          cap ? formatSize(cap) : "none",
          engine,
          test,
          `${r.avg_ts.toFixed(2)} ± ${r.stddev_ts.toFixed(2)}`,
          formatSize(missed),
          Number.isFinite(ioBound) ? ioBound.toFixed(2) : "∞",
          memBound.toFixed(2),
          formatSize(result.peak || r.peak_rss_bytes),
          ref ? (r.avg_ts / ref).toFixed(2) : "",
        ]);
        tsv.push([
          new Date().toISOString(),
          commit,
          `${cpuInfo()}`,
          a.model.slice(a.model.lastIndexOf("/") + 1),
          modelBytes,
          cap,
          a.cold || cap > 0 ? "cold" : "warm",
          engine,
          base.threads,
          test,
          r.avg_ts.toFixed(3),
          r.stddev_ts.toFixed(3),
          Math.round(missed),
          result.peak,
          r.peak_rss_bytes,
          r.expert_hit_rate.toFixed(3),
          diskGBps.toFixed(2),
          memGBps.toFixed(1),
          Number.isFinite(ioBound) ? ioBound.toFixed(2) : "inf",
          memBound.toFixed(2),
        ].join("\t"));
      }
      append(tsv);
    }
  }
  const head = [
    "cap",
    "engine",
    "test",
    "t/s",
    "disk read/tok",
    "I/O bound t/s",
    "mem bound t/s",
    "peak (cgroup)",
    "vs llama.cpp",
  ];
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (c: string[]) => `| ${c.map((x, i) => x.padEnd(width[i])).join(" | ")} |`;
  console.log([line(head), `| ${width.map((w) => "-".repeat(w)).join(" | ")} |`, ...rows.map(line)].join("\n"));
  console.log(`appended ${appended} rows to ${results}`);
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
