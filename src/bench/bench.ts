/**
 * The end-to-end benchmark: prompt processing (`ppN`) and generation (`tgN`)
 * through the engine, timed as llama-bench times them (random token ids, so
 * no tokenization; fixed next tokens, so no sampling), repeated, with the
 * expert store's and predictor's counters and the peak RSS of each test.
 *
 * @module
 */
import { Engine, type EngineOptions, type EngineStats } from "../engine.ts";
import { EdgeMoeError } from "../errors.ts";
import { NativeLibrary } from "../../ffi/native.ts";
import { GgufFile } from "../gguf/mod.ts";
import { isPack } from "../pack/mod.ts";
import { parseSize } from "../store/budget.ts";
import { type BenchRecord, meanSd } from "./format.ts";

/** Options of {@linkcode runBench}. */
export interface BenchOptions {
  /** Prompt lengths to test (`ppN`); 0 entries are skipped. */
  nPrompt: readonly number[];
  /** Generation lengths to test (`tgN`); 0 entries are skipped. */
  nGen: readonly number[];
  /** Repetitions of each test (≥ 1). */
  repetitions: number;
  /** Threads (recorded; passed to the engine's options). */
  threads: number;
  /** Engine options (store, predictor, budget...). */
  engine: EngineOptions;
  /** Called after each repetition (progress). */
  onRep?: (test: string, rep: number) => void;
}

const LIBC = {
  open: { parameters: ["buffer", "i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

let libc: Deno.DynamicLibrary<typeof LIBC>["symbols"] | undefined;

/**
 * Reads or writes a /proc file through libc: Deno asks for `--allow-all` to
 * touch /proc, which `--allow-ffi` already implies. Undefined on failure.
 */
function procFile(path: string, text?: string): string | undefined {
  try {
    libc ??= Deno.dlopen("libc.so.6", LIBC).symbols;
  } catch {
    return undefined;
  }
  const fd = libc.open(new TextEncoder().encode(path + "\0"), text === undefined ? 0 : 1);
  if (fd < 0) return undefined;
  try {
    if (text !== undefined) {
      const bytes = new TextEncoder().encode(text);
      return libc.write(fd, bytes, BigInt(bytes.length)) === BigInt(bytes.length) ? text : undefined;
    }
    const dec = new TextDecoder();
    const buf = new Uint8Array(65536);
    let out = "";
    for (;;) {
      const n = Number(libc.read(fd, buf, BigInt(buf.length)));
      if (n < 0) return undefined;
      if (n === 0) return out + dec.decode();
      out += dec.decode(buf.subarray(0, n), { stream: true });
    }
  } finally {
    libc.close(fd);
  }
}

/** Peak resident set (VmHWM) of this process in bytes, or 0 where /proc is missing. */
export function peakRss(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(procFile("/proc/self/status") ?? "");
  return m ? Number(m[1]) * 1024 : 0;
}

/** Bytes this process has read from storage (`read_bytes` of /proc/self/io), or 0. */
export function diskReadBytes(): number {
  const m = /read_bytes:\s+(\d+)/.exec(procFile("/proc/self/io") ?? "");
  return m ? Number(m[1]) : 0;
}

/** Resets VmHWM to the current RSS (Linux `clear_refs` 5); false where not allowed. */
export function resetPeakRss(): boolean {
  return procFile("/proc/self/clear_refs", "5") !== undefined;
}

/** The commit of the source tree this module runs from (`git rev-parse`), or `"unknown"`. */
export function buildCommit(): string {
  const url = new URL("../..", import.meta.url);
  if (url.protocol !== "file:") return "unknown";
  try {
    const out = new Deno.Command("git", { args: ["rev-parse", "--short=12", "HEAD"], cwd: url, stderr: "null" })
      .outputSync();
    const dirty = new Deno.Command("git", { args: ["status", "--porcelain", "--untracked-files=no"], cwd: url })
      .outputSync();
    const id = new TextDecoder().decode(out.stdout).trim();
    if (!out.success || !id) return "unknown";
    return new TextDecoder().decode(dirty.stdout).trim() ? `${id}-dirty` : id;
  } catch {
    return "unknown";
  }
}

/** The CPU's model name from /proc/cpuinfo and the core count. */
export function cpuInfo(): string {
  const name = /model name\s*:\s*(.+)/.exec(procFile("/proc/cpuinfo") ?? "")?.[1].trim() ?? Deno.build.arch;
  return `${name} (${navigator.hardwareConcurrency} cpus)`;
}

/** Architecture, parameter count and the dominant tensor type of a GGUF file. */
function modelInfo(path: string): { type: string; params: number; size: number } {
  using f = GgufFile.open(path);
  const arch = f.has("general.architecture") ? f.getString("general.architecture") : "?";
  let params = 0;
  const byType = new Map<string, number>();
  for (const t of f.tensors) {
    const n = t.dims.reduce((a, b) => a * b, 1);
    params += n;
    byType.set(t.type.name, (byType.get(t.type.name) ?? 0) + n);
  }
  const main = [...byType].sort((a, b) => b[1] - a[1])[0]?.[0] ?? "?";
  const pack = isPack(f) ? " pack" : "";
  return { type: `${arch} ${(params / 1e9).toFixed(2)}B ${main.toUpperCase()}${pack}`, params, size: f.size };
}

interface Counters {
  hits: number;
  misses: number;
  bytes: number;
  waitNs: number;
  predicted: number;
  correct: number;
  actual: number;
  disk: number;
}

function counters(s: EngineStats): Counters {
  return {
    hits: s.store?.hits ?? 0,
    misses: s.store?.misses ?? 0,
    bytes: s.store?.bytesReadTotal ?? 0,
    waitNs: s.store?.waitNsTotal ?? 0,
    predicted: s.predictor.predicted,
    correct: s.predictor.correct,
    actual: s.predictor.actual,
    disk: diskReadBytes(),
  };
}

/** Deterministic pseudo-random token ids in `[0, vocab)` (llama-bench feeds random tokens too). */
export function benchTokens(n: number, vocab: number, seed: number): number[] {
  let x = seed >>> 0 || 1;
  return Array.from({ length: n }, () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % vocab;
  });
}

function checkCount(name: string, v: number, min: number): void {
  if (!Number.isSafeInteger(v) || v < min) {
    throw new EdgeMoeError("invalid_argument", "bench", `${name} must be an integer ≥ ${min}, got ${v}`);
  }
}

/**
 * Runs every `ppN` and `tgN` test on the model at `path` and returns one
 * record per test. The engine is opened once; each repetition starts from an
 * empty context; one untimed warm-up evaluation precedes the tests.
 *
 * @throws {EdgeMoeError} `invalid_argument` for bad counts; whatever opening the model throws.
 */
export function runBench(path: string, opts: BenchOptions): BenchRecord[] {
  checkCount("repetitions", opts.repetitions, 1);
  checkCount("threads", opts.threads, 1);
  for (const n of [...opts.nPrompt, ...opts.nGen]) checkCount("a test length", n, 0);
  const tests = [
    ...opts.nPrompt.filter((n) => n > 0).map((n) => ({ nPrompt: n, nGen: 0 })),
    ...opts.nGen.filter((n) => n > 0).map((n) => ({ nPrompt: 0, nGen: n })),
  ];
  if (tests.length === 0) throw new EdgeMoeError("invalid_argument", "bench", "no test: every -p and -n is 0");
  const longest = Math.max(...tests.map((t) => t.nPrompt + t.nGen)) + 1;
  const lib = opts.engine.lib ?? NativeLibrary.open();
  const info = modelInfo(path);
  const started = new Date().toISOString();
  using engine = Engine.open(path, {
    ...opts.engine,
    threads: opts.threads,
    lib,
    nCtx: Math.max(opts.engine.nCtx ?? 0, longest),
  });
  const vocab = engine.model.hp.nVocab;
  engine.evaluate(benchTokens(1, vocab, 7));
  engine.reset();
  const base: Omit<BenchRecord, "n_prompt" | "n_gen" | "avg_ns" | "stddev_ns" | "avg_ts" | "stddev_ts"> = {
    build_commit: buildCommit(),
    cpu_info: cpuInfo(),
    kernel_variant: lib.variant,
    cpu_features: lib.cpuFeatures().join(" "),
    model_filename: path,
    model_type: info.type,
    model_size: info.size,
    model_n_params: info.params,
    n_threads: opts.threads,
    store: engine.store,
    predictor: engine.stats().predictor.name,
    mem_budget: opts.engine.memBudget === undefined ? 0 : parseSize(opts.engine.memBudget),
    test_time: started,
    repetitions: opts.repetitions,
    expert_hit_rate: 1,
    bytes_read_per_token: 0,
    disk_read_bytes_per_token: 0,
    io_wait_ns_per_token: 0,
    prefetch_precision: -1,
    prefetch_recall: -1,
    peak_rss_bytes: 0,
  };
  const records: BenchRecord[] = [];
  for (const [index, t] of tests.entries()) {
    const name = t.nGen === 0 ? `pp${t.nPrompt}` : `tg${t.nGen}`;
    const times: number[] = [];
    resetPeakRss();
    const before = counters(engine.stats());
    for (let rep = 0; rep < opts.repetitions; rep++) {
      engine.reset();
      // Other tokens for every test and repetition: no test starts with the experts of the one before.
      const ids = benchTokens(t.nPrompt + t.nGen, vocab, 1 + rep + 1000 * index);
      const t0 = performance.now();
      if (t.nPrompt > 0) engine.evaluate(ids);
      else for (const id of ids) engine.evaluate([id]);
      times.push((performance.now() - t0) * 1e6);
      opts.onRep?.(name, rep);
    }
    const after = counters(engine.stats());
    const d = (k: keyof Counters) => after[k] - before[k];
    const n = (t.nPrompt + t.nGen) * opts.repetitions;
    const ns = meanSd(times);
    const ts = meanSd(times.map((x) => ((t.nPrompt + t.nGen) * 1e9) / x));
    records.push({
      ...base,
      n_prompt: t.nPrompt,
      n_gen: t.nGen,
      avg_ns: Math.round(ns.mean),
      stddev_ns: Math.round(ns.sd),
      avg_ts: ts.mean,
      stddev_ts: ts.sd,
      expert_hit_rate: d("hits") + d("misses") > 0 ? d("hits") / (d("hits") + d("misses")) : 1,
      bytes_read_per_token: d("bytes") / n,
      disk_read_bytes_per_token: d("disk") / n,
      io_wait_ns_per_token: d("waitNs") / n,
      prefetch_precision: d("predicted") > 0 ? d("correct") / d("predicted") : -1,
      prefetch_recall: d("actual") > 0 && d("predicted") > 0 ? d("correct") / d("actual") : -1,
      peak_rss_bytes: peakRss(),
    });
  }
  return records;
}
