/**
 * Benchmark results in llama-bench's vocabulary: one flat record per test
 * (`pp512`, `tg128`), the same field list printed as Markdown, CSV, JSON or
 * JSONL.
 *
 * @module
 */
import { EdgeMoeError } from "../errors.ts";

/** One test's result: llama-bench's fields, then the MoE ones. Times in ns, sizes in bytes. */
export interface BenchRecord {
  build_commit: string;
  cpu_info: string;
  kernel_variant: string;
  cpu_features: string;
  model_filename: string;
  model_type: string;
  model_size: number;
  model_n_params: number;
  n_threads: number;
  store: string;
  predictor: string;
  mem_budget: number;
  n_prompt: number;
  n_gen: number;
  test_time: string;
  repetitions: number;
  avg_ns: number;
  stddev_ns: number;
  avg_ts: number;
  stddev_ts: number;
  /** Experts found in the cache / experts acquired (1 when all experts are in RAM). */
  expert_hit_rate: number;
  /** Bytes the expert store read per token. */
  bytes_read_per_token: number;
  /** Bytes the process read from storage per token (`read_bytes` of /proc/self/io: page faults of mmap too). */
  disk_read_bytes_per_token: number;
  io_wait_ns_per_token: number;
  /** Predicted experts the router used / experts predicted (-1: no prediction). */
  prefetch_precision: number;
  /** Predicted experts the router used / experts the router used (-1: no prediction). */
  prefetch_recall: number;
  /** VmHWM of the process during the test. */
  peak_rss_bytes: number;
}

/** The field list, in output order. */
export const BENCH_FIELDS: readonly (keyof BenchRecord)[] = [
  "build_commit",
  "cpu_info",
  "kernel_variant",
  "cpu_features",
  "model_filename",
  "model_type",
  "model_size",
  "model_n_params",
  "n_threads",
  "store",
  "predictor",
  "mem_budget",
  "n_prompt",
  "n_gen",
  "test_time",
  "repetitions",
  "avg_ns",
  "stddev_ns",
  "avg_ts",
  "stddev_ts",
  "expert_hit_rate",
  "bytes_read_per_token",
  "disk_read_bytes_per_token",
  "io_wait_ns_per_token",
  "prefetch_precision",
  "prefetch_recall",
  "peak_rss_bytes",
];

/** Output formats of `edgemoe bench`. */
export type BenchOutput = "md" | "csv" | "json" | "jsonl";

/** The test's name as llama-bench prints it: `pp512`, `tg128`, `pp512+tg128`. */
export function testName(r: Pick<BenchRecord, "n_prompt" | "n_gen">): string {
  if (r.n_gen === 0) return `pp${r.n_prompt}`;
  if (r.n_prompt === 0) return `tg${r.n_gen}`;
  return `pp${r.n_prompt}+tg${r.n_gen}`;
}

function csvCell(v: string | number): string {
  const s = String(v);
  return /[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

function gib(bytes: number): string {
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
}

function ratio(x: number): string {
  return x < 0 ? "-" : x.toFixed(3);
}

function markdown(records: readonly BenchRecord[]): string {
  const head = [
    "model",
    "size",
    "params",
    "store",
    "predictor",
    "threads",
    "test",
    "t/s",
    "hit rate",
    "read/tok",
    "disk/tok",
    "I/O wait/tok",
    "prefetch P/R",
    "peak RSS",
  ];
  const rows = records.map((r) => [
    r.model_type,
    gib(r.model_size),
    r.model_n_params >= 1e9 ? `${(r.model_n_params / 1e9).toFixed(2)} B` : `${(r.model_n_params / 1e6).toFixed(2)} M`,
    r.store,
    r.predictor,
    String(r.n_threads),
    testName(r),
    `${r.avg_ts.toFixed(2)} ± ${r.stddev_ts.toFixed(2)}`,
    ratio(r.expert_hit_rate),
    `${(r.bytes_read_per_token / 1024 ** 2).toFixed(2)} MiB`,
    `${(r.disk_read_bytes_per_token / 1024 ** 2).toFixed(2)} MiB`,
    `${(r.io_wait_ns_per_token / 1e6).toFixed(2)} ms`,
    `${ratio(r.prefetch_precision)} / ${ratio(r.prefetch_recall)}`,
    gib(r.peak_rss_bytes),
  ]);
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (i >= 5 ? c.padStart(width[i]) : c.padEnd(width[i]))).join(" | ")} |`;
  const rule = `| ${width.map((w, i) => (i >= 5 ? "-".repeat(w - 1) + ":" : "-".repeat(w))).join(" | ")} |`;
  return [line(head), rule, ...rows.map(line)].join("\n");
}

/** The header lines printed above the Markdown table. */
export function markdownHeader(r: BenchRecord): string {
  return `build: ${r.build_commit}; kernels: ${r.kernel_variant} (${r.cpu_features}); cpu: ${r.cpu_info}`;
}

/**
 * `records` in `format`. CSV and JSONL have one line per record, JSON is an
 * array, Markdown a table with a header line (build, kernels, CPU).
 */
export function formatBench(records: readonly BenchRecord[], format: BenchOutput): string {
  switch (format) {
    case "md":
      return records.length ? `${markdownHeader(records[0])}\n\n${markdown(records)}` : "";
    case "csv":
      return [BENCH_FIELDS.join(","), ...records.map((r) => BENCH_FIELDS.map((f) => csvCell(r[f])).join(","))].join(
        "\n",
      );
    case "json":
      return JSON.stringify(records.map((r) => Object.fromEntries(BENCH_FIELDS.map((f) => [f, r[f]]))), null, 2);
    case "jsonl":
      return records.map((r) => JSON.stringify(Object.fromEntries(BENCH_FIELDS.map((f) => [f, r[f]])))).join("\n");
    default:
      throw new EdgeMoeError("invalid_argument", "format bench", `unknown output format "${format}"`);
  }
}

/** Mean and sample standard deviation. */
export function meanSd(xs: readonly number[]): { mean: number; sd: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = xs.length > 1 ? Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (xs.length - 1)) : 0;
  return { mean, sd };
}
