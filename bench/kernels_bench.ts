/**
 * Kernel benchmarks: `deno task bench`. Deno.bench reports time per call;
 * the GB/s of weights streamed is printed per benchmark after a fixed
 * measurement, since that is the number to compare with memory bandwidth.
 */
import { NativeLibrary } from "../mod.ts";

const lib = NativeLibrary.open();
const rows = 4096, cols = 4096;
const x = new Float32Array(cols).map((_, i) => Math.sin(i));
const y = new Float32Array(rows);
const w32 = new Float32Array(rows * cols).map((_, i) => Math.cos(i * 0.01));
const w16 = new Uint16Array(new Float16Array(w32).buffer);

function gbps(name: string, bytes: number, fn: () => void): void {
  fn();
  const reps = 20;
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) fn();
  const s = (performance.now() - t0) / 1000;
  console.log(`${name}: ${(bytes * reps / s / 1e9).toFixed(1)} GB/s [${lib.variant}]`);
}

const cases: [string, number, () => void][] = [
  ["matvec f32 4096x4096", w32.byteLength, () => lib.matvecF32(w32, x, y, rows, cols)],
  ["matvec f16 4096x4096", w16.byteLength, () => lib.matvecF16(w16, x, y, rows, cols)],
];
for (const [name, bytes, fn] of cases) {
  gbps(name, bytes, fn);
  Deno.bench({ name, group: "matvec", fn });
}
const small = new Float32Array(4096);
Deno.bench({
  name: "dot f32 4096 (FFI call overhead + 16 KiB)",
  group: "call",
  fn: () => void lib.dotF32(small, small),
});
