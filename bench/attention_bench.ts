/**
 * Decode attention speed: wall time of one `attention` call (one query token)
 * over a KV cache of n positions, f32 and f16 caches, on the calling thread and
 * split over a pool. The shape defaults to Qwen3-MoE's (32 query heads over 4
 * KV heads of 128). With `--baseline LIB`, each cell also times another build
 * of the library (e.g. main's, copied aside) in the same process.
 *
 *   deno run -A bench/attention_bench.ts [--reps N] [--threads 1,2] [--positions 64,512,2048]
 *     [--heads 32] [--kv-heads 4] [--head-dim 128] [--baseline LIB]
 *
 * Prints a Markdown table of microseconds per call. Each cell is the best of N
 * timed runs, the variants interleaved so a busy machine slows them alike.
 * With `--cold`, every timed call is preceded by a read of 64 MiB so the KV
 * cache comes from DRAM, as in a decode step where expert weights streamed
 * through the caches since the layer's last attention.
 */
import { NativeLibrary, type ThreadPool } from "../mod.ts";
import { parseArgs } from "../src/std/cli.ts";

const args = parseArgs(Deno.args, {
  string: ["reps", "threads", "positions", "heads", "kv-heads", "head-dim", "baseline"],
  boolean: ["cold"],
  default: { reps: "200", threads: "1,2", positions: "64,512,2048", heads: "32", "kv-heads": "4", "head-dim": "128" },
});
const reps = Number(args.reps);
const nHead = Number(args.heads), nHeadKv = Number(args["kv-heads"]), headDim = Number(args["head-dim"]);
const threadCounts = String(args.threads).split(",").map(Number);
const positions = String(args.positions).split(",").map(Number);

using lib = NativeLibrary.open();
using base = args.baseline ? NativeLibrary.open({ path: String(args.baseline) }) : undefined;
const pools = threadCounts.map((n) => ({ n, pool: lib.createPool(n), basePool: base?.createPool(n) }));

const evict = args.cold ? new Float32Array(16 << 20).fill(1) : undefined;
let evictSum = 0;

/** Best wall time in microseconds of each of `fns`, run interleaved `reps` times (calls repeated in batches). */
function bestUs(fns: (() => void)[], batch: number): number[] {
  const best = fns.map((fn) => (fn(), Infinity));
  for (let i = 0; i < reps; i++) {
    fns.forEach((fn, k) => {
      if (evict) { for (let j = 0; j < evict.length; j += 16) evictSum += evict[j]; }
      const t0 = performance.now();
      for (let j = 0; j < batch; j++) fn();
      best[k] = Math.min(best[k], (performance.now() - t0) * 1000 / batch);
    });
  }
  return best;
}

const qDim = nHead * headDim, kvDim = nHeadKv * headDim;
const q = new Float32Array(qDim).map((_, i) => Math.sin(i * 0.37));
const out = new Float32Array(qDim);
console.log(
  `${nHead} heads / ${nHeadKv} KV heads × ${headDim}, ${lib.variant}, best of ${reps}${
    args.cold ? ", cold caches" : ""
  }${base ? `, baseline ${args.baseline}` : ""}\n`,
);
const baseCols = base ? ["baseline µs", "speedup"] : [];
console.log(`| ${["cache", "positions", "threads", "µs", ...baseCols].join(" | ")} |`);
console.log(`| ${["-----", "--------:", "------:", "-:", ...baseCols.map(() => "-:")].join(" | ")} |`);
for (const kvType of ["f32", "f16"] as const) {
  for (const nKv of positions) {
    const kf = new Float32Array(nKv * kvDim).map((_, i) => Math.cos(i * 0.011) * 2);
    const vf = new Float32Array(nKv * kvDim).map((_, i) => Math.sin(i * 0.007));
    const k = kvType === "f32" ? kf : new Float16Array(kf), v = kvType === "f32" ? vf : new Float16Array(vf);
    const shape = { nHead, nHeadKv, headDim, nKv, scale: 1 / Math.sqrt(headDim) };
    // Short calls are batched so the timer's resolution does not dominate.
    const batch = evict ? 1 : Math.max(1, Math.round(16384 / nKv));
    for (const { n, pool, basePool } of pools) {
      const p: ThreadPool | undefined = n > 1 ? pool : undefined;
      const bp: ThreadPool | undefined = n > 1 ? basePool : undefined;
      const [ours, theirs] = bestUs([
        () => lib.attention(q, k, v, out, shape, p),
        ...(base ? [() => base.attention(q, k, v, out, shape, bp)] : []),
      ], batch);
      const cells = [kvType, nKv, n, ours.toFixed(1)];
      if (theirs !== undefined) cells.push(theirs.toFixed(1), `${(theirs / ours).toFixed(2)}x`);
      console.log(`| ${cells.join(" | ")} |`);
    }
  }
}
for (const { pool, basePool } of pools) {
  pool.close();
  basePool?.close();
}
if (evictSum < 0) console.log(evictSum);
