/**
 * The numeric building blocks of a transformer layer, on f32 activations:
 * matrix–vector products through the native kernels, and the small
 * element-wise steps (RMSNorm, RoPE, SwiGLU, attention) in TypeScript with
 * f32 rounding where GGML rounds.
 *
 * @module
 */
import { EdgeMoeError } from "../errors.ts";
import type { NativeLibrary } from "../../ffi/native.ts";
import type { TensorData } from "./weights.ts";

/** GGML types the graph can multiply today, with block elements and bytes. */
const TYPE_SIZES: ReadonlyMap<number, { name: string; elems: number; bytes: number }> = new Map([
  [0, { name: "F32", elems: 1, bytes: 4 }],
  [1, { name: "F16", elems: 1, bytes: 2 }],
]);

function sizeOf(t: TensorData, op: string) {
  const s = TYPE_SIZES.get(t.type);
  if (!s) {
    throw new EdgeMoeError(
      "unsupported",
      op,
      `tensor ${t.name} has GGML type ${t.type}, which the graph cannot use yet`,
    );
  }
  return s;
}

/** Rows and row length of a 2-D (or stacked 3-D) weight. */
export function matrixShape(t: TensorData): { rows: number; cols: number } {
  const cols = t.dims[0];
  let rows = 1;
  for (let i = 1; i < t.dims.length; i++) rows *= t.dims[i];
  return { rows, cols };
}

function view(t: TensorData, op: string): Float32Array | Uint16Array {
  const s = sizeOf(t, op);
  const { rows, cols } = matrixShape(t);
  const n = rows * cols;
  if (t.data.byteLength !== n * s.bytes) {
    throw new EdgeMoeError(
      "corrupt_data",
      op,
      `tensor ${t.name} has ${t.data.byteLength} bytes, expected ${n * s.bytes}`,
    );
  }
  const aligned = t.data.byteOffset % s.bytes === 0 ? t.data : t.data.slice();
  return s.bytes === 4
    ? new Float32Array(aligned.buffer, aligned.byteOffset, n)
    : new Uint16Array(aligned.buffer, aligned.byteOffset, n);
}

/**
 * `y = W·x` for a weight matrix `W` (`rows × cols`, GGUF `dims = [cols, rows]`).
 *
 * @throws {EdgeMoeError} `invalid_argument` on shape mismatch, `unsupported` for an unknown type.
 */
export function matvec(lib: NativeLibrary, w: TensorData, x: Float32Array, y: Float32Array): void {
  const op = `matvec ${w.name}`;
  const { rows, cols } = matrixShape(w);
  if (x.length !== cols || y.length !== rows) {
    throw new EdgeMoeError(
      "invalid_argument",
      op,
      `expected x[${cols}] → y[${rows}], got x[${x.length}] → y[${y.length}]`,
    );
  }
  const v = view(w, op);
  if (v instanceof Float32Array) lib.matvecF32(v, x, y, rows, cols);
  // As GGML: F16 weights multiply activations rounded to F16 (F16's vec_dot_type).
  else lib.matvecF16(v, Float32Array.from(new Float16Array(x)), y, rows, cols);
}

/** Writes row `row` of `t` to `out` as f32 (embedding lookup). */
export function dequantizeRow(t: TensorData, row: number, out: Float32Array): void {
  const op = `read row of ${t.name}`;
  const { rows, cols } = matrixShape(t);
  if (!Number.isInteger(row) || row < 0 || row >= rows) {
    throw new EdgeMoeError("invalid_argument", op, `row ${row} is outside 0..${rows - 1}`);
  }
  if (out.length !== cols) {
    throw new EdgeMoeError("invalid_argument", op, `out has ${out.length} floats, expected ${cols}`);
  }
  const v = view(t, op);
  if (v instanceof Float32Array) out.set(v.subarray(row * cols, (row + 1) * cols));
  else out.set(new Float16Array(v.buffer, v.byteOffset + row * cols * 2, cols));
}

/** `out = x / sqrt(mean(x²) + eps) * w` (w may be omitted). Sum in f64 as GGML does. */
export function rmsNorm(x: Float32Array, w: Float32Array | undefined, eps: number, out: Float32Array): void {
  let ss = 0;
  for (let i = 0; i < x.length; i++) ss += x[i] * x[i];
  const scale = Math.fround(1 / Math.sqrt(Math.fround(ss / x.length) + eps));
  if (w) { for (let i = 0; i < x.length; i++) out[i] = Math.fround(x[i] * scale) * w[i]; }
  else for (let i = 0; i < x.length; i++) out[i] = x[i] * scale;
}

/**
 * Rotary position embedding of `nHeads` heads of `headDim` in `x`, in place,
 * over the first `ropeDim` dims of each head. `neox` rotates pairs (i, i+d/2);
 * otherwise adjacent pairs (2i, 2i+1), as GGML's NORM mode.
 */
export function rope(
  x: Float32Array,
  nHeads: number,
  headDim: number,
  ropeDim: number,
  pos: number,
  base: number,
  neox: boolean,
): void {
  const half = ropeDim / 2;
  const thetaScale = Math.fround(Math.pow(base, -2 / ropeDim));
  const cos = new Float32Array(half), sin = new Float32Array(half);
  let theta = pos;
  for (let i = 0; i < half; i++) {
    cos[i] = Math.cos(theta);
    sin[i] = Math.sin(theta);
    theta = Math.fround(theta * thetaScale);
  }
  for (let h = 0; h < nHeads; h++) {
    const o = h * headDim;
    for (let i = 0; i < half; i++) {
      const a = neox ? o + i : o + 2 * i;
      const b = neox ? o + i + half : o + 2 * i + 1;
      const x0 = x[a], x1 = x[b];
      x[a] = x0 * cos[i] - x1 * sin[i];
      x[b] = x0 * sin[i] + x1 * cos[i];
    }
  }
}

/** `x / (1 + e^-x)`. */
export function silu(x: number): number {
  return x / (1 + Math.exp(-x));
}

/** Adds `b` to `a` in place. */
export function addInPlace(a: Float32Array, b: Float32Array): void {
  for (let i = 0; i < a.length; i++) a[i] += b[i];
}
