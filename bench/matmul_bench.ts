/**
 * Matrix–matrix (prefill) speed: GFLOP/s of Y = W·X for T tokens (T = 1, 2,
 * 3, 4, 6, 7, 8, 16, 32, 64) with one `matmul` call, beside T `matvec` calls over the same
 * weights and tokens (what prefill did before). W is `rows × cols` of each type.
 * With `--baseline LIB`, a third column times `matmul` of another build of the
 * library (e.g. main's, copied aside) in the same process.
 *
 *   deno run -A bench/matmul_bench.ts [--reps N] [--threads N] [--rows R] [--cols C] [--types t1,t2] [--baseline LIB]
 *
 * Prints a Markdown table. Each cell is the best of N timed runs, the two
 * variants interleaved so a busy machine slows both alike.
 */
import { type GgmlTypeName, NativeLibrary } from "../mod.ts";
import { parseArgs } from "../src/std/cli.ts";

const args = parseArgs(Deno.args, {
  string: ["reps", "threads", "rows", "cols", "types", "baseline"],
  default: { reps: "5", threads: "1", rows: "4096", cols: "4096", types: "f32,f16,q8_0,q4_0,q6_k,q4_k" },
});
const reps = Number(args.reps), rows = Number(args.rows), cols = Number(args.cols);
const types = String(args.types).split(",") as GgmlTypeName[];
const tokenCounts = [1, 2, 3, 4, 6, 7, 8, 16, 32, 64];

using lib = NativeLibrary.open();
using pool = lib.createPool(Number(args.threads));
using base = args.baseline ? NativeLibrary.open({ path: String(args.baseline) }) : undefined;
using basePool = base?.createPool(Number(args.threads));
const wf = new Float32Array(rows * cols).map((_, i) => Math.cos(i * 0.013) * 0.5);

function bestMs(fns: (() => void)[]): number[] {
  const best = fns.map((fn) => (fn(), Infinity));
  for (let i = 0; i < reps; i++) {
    fns.forEach((fn, k) => {
      const t0 = performance.now();
      fn();
      best[k] = Math.min(best[k], performance.now() - t0);
    });
  }
  return best;
}

console.log(`${rows}×${cols}, ${pool.threads} thread(s), ${lib.variant}, best of ${reps}\n`);
const baseCols = base ? ["baseline matmul GFLOP/s", "vs baseline"] : [];
console.log(`| ${["type", "T", "T × matvec GFLOP/s", "matmul GFLOP/s", "speedup", ...baseCols].join(" | ")} |`);
console.log(
  `| ${["----", "-:", "-----------------:", "-------------:", "------:", ...baseCols.map(() => "-:")].join(" | ")} |`,
);
for (const type of types) {
  const w = lib.quantize(type, wf);
  for (const T of tokenCounts) {
    const x = new Float32Array(T * cols).map((_, i) => Math.sin(i * 0.7));
    const y = new Float32Array(T * rows);
    const [perToken, batched, baseline] = bestMs([
      () => {
        for (let t = 0; t < T; t++) {
          lib.matvec(
            type,
            w,
            x.subarray(t * cols, (t + 1) * cols),
            y.subarray(t * rows, (t + 1) * rows),
            rows,
            cols,
            pool,
          );
        }
      },
      () => lib.matmul(type, w, x, y, rows, cols, T, pool),
      ...(base && basePool ? [() => base.matmul(type, w, x, y, rows, cols, T, basePool)] : []),
    ]);
    const gflop = 2 * rows * cols * T / 1e9;
    const cells = [type, T, (gflop / (perToken / 1000)).toFixed(1), (gflop / (batched / 1000)).toFixed(1)];
    cells.push(`${(perToken / batched).toFixed(2)}x`);
    if (baseline !== undefined) {
      cells.push((gflop / (baseline / 1000)).toFixed(1), `${(baseline / batched).toFixed(2)}x`);
    }
    console.log(`| ${cells.join(" | ")} |`);
  }
}
