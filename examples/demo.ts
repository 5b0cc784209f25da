/**
 * The demo: the smallest real thing the engine does end to end today. It opens
 * the native library (building it from source on first run), multiplies a
 * 4096×4096 f16 matrix by a vector with the SIMD kernel, checks the result
 * against a plain TypeScript computation, and reports the bandwidth.
 *
 *   deno task demo
 */
import { NativeLibrary } from "../mod.ts";

using lib = NativeLibrary.open();
console.log(`libedgemoe: ${lib.variant} (${lib.path})`);
console.log(`CPU features: ${lib.cpuFeatures().join(" ")}`);

const rows = 4096, cols = 4096;
const weights = new Float16Array(rows * cols);
for (let i = 0; i < weights.length; i++) weights[i] = Math.sin(i * 0.37) * 0.5;
const x = new Float32Array(cols).map((_, i) => Math.cos(i * 0.11));
const y = new Float32Array(rows);
const w16 = new Uint16Array(weights.buffer);

lib.matvecF16(w16, x, y, rows, cols);
let maxErr = 0;
for (let r = 0; r < rows; r += 97) {
  let ref = 0;
  for (let c = 0; c < cols; c++) ref += weights[r * cols + c] * x[c];
  maxErr = Math.max(maxErr, Math.abs(ref - y[r]));
}
console.log(
  `y = W·x for ${rows}×${cols} f16: max |native − TypeScript| over sampled rows = ${maxErr.toExponential(2)}`,
);

const reps = 20;
const t0 = performance.now();
for (let i = 0; i < reps; i++) lib.matvecF16(w16, x, y, rows, cols);
const sec = (performance.now() - t0) / 1000;
console.log(
  `${(reps * w16.byteLength / sec / 1e9).toFixed(1)} GB/s of weights read (${
    (sec / reps * 1e3).toFixed(2)
  } ms per matvec)`,
);
if (!(maxErr < 1e-2)) {
  console.error("mismatch: the native kernel disagrees with the reference");
  Deno.exit(1);
}
