/**
 * The numeric building blocks of a transformer layer, on f32 activations:
 * matrix–vector products through the native kernels, and the small
 * element-wise steps (RMSNorm, RoPE, SwiGLU, attention) in TypeScript with
 * f32 rounding where GGML rounds.
 *
 * @module
 */
import { EdgeMoeError } from "../errors.ts";
import type { GgmlTypeName, NativeLibrary, ThreadPool } from "../../ffi/native.ts";
import { GgmlType, ggmlTypeById, tensorBytes } from "../gguf/types.ts";
import type { TensorData } from "./weights.ts";

/** Rows and row length of a 2-D (or stacked 3-D) weight. */
export function matrixShape(t: TensorData): { rows: number; cols: number } {
  const cols = t.dims[0];
  let rows = 1;
  for (let i = 1; i < t.dims.length; i++) rows *= t.dims[i];
  return { rows, cols };
}

function typeName(t: TensorData, op: string): GgmlTypeName {
  const info = ggmlTypeById(t.type);
  if (!info) throw new EdgeMoeError("unsupported", op, `tensor ${t.name} has unknown GGML type ${t.type}`);
  return info.name as GgmlTypeName;
}

/** The bytes of `t`, checked against its shape and copied if not 4-byte aligned (block structs need it). */
function bytesOf(t: TensorData, op: string): Uint8Array {
  const { rows, cols } = matrixShape(t);
  const info = ggmlTypeById(t.type);
  const rowBytes = info ? tensorBytes(info, BigInt(cols)) : undefined;
  if (rowBytes === undefined) {
    throw new EdgeMoeError(
      "unsupported",
      op,
      `tensor ${t.name}: GGML type ${t.type} cannot hold rows of ${cols} elements`,
    );
  }
  if (t.data.byteLength !== rows * Number(rowBytes)) {
    throw new EdgeMoeError(
      "corrupt_data",
      op,
      `tensor ${t.name} has ${t.data.byteLength} bytes, expected ${rows * Number(rowBytes)}`,
    );
  }
  return t.data.byteOffset % 4 === 0 ? t.data : t.data.slice();
}

/**
 * `y = W·x` for a weight matrix `W` (`rows × cols`, GGUF `dims = [cols, rows]`)
 * of any GGML weight type, through the native generic matvec, which converts
 * `x` once to the type's activation format as GGML does (F16 for F16 weights,
 * BF16 for BF16, Q8_x for the quantized types).
 *
 * @throws {EdgeMoeError} `invalid_argument` on shape mismatch, `unsupported` for an unknown type.
 */
export function matvec(lib: NativeLibrary, w: TensorData, x: Float32Array, y: Float32Array, pool?: ThreadPool): void {
  const op = `matvec ${w.name}`;
  const { rows, cols } = matrixShape(w);
  if (x.length !== cols || y.length !== rows) {
    throw new EdgeMoeError(
      "invalid_argument",
      op,
      `expected x[${cols}] → y[${rows}], got x[${x.length}] → y[${y.length}]`,
    );
  }
  const bytes = bytesOf(w, op);
  lib.matvec(typeName(w, op), bytes, x, y, rows, cols, pool);
}

/** Writes row `row` of `t` to `out` as f32 (embedding lookup), dequantizing if needed. */
export function dequantizeRow(lib: NativeLibrary, t: TensorData, row: number, out: Float32Array): void {
  const op = `read row of ${t.name}`;
  const { rows, cols } = matrixShape(t);
  if (!Number.isInteger(row) || row < 0 || row >= rows) {
    throw new EdgeMoeError("invalid_argument", op, `row ${row} is outside 0..${rows - 1}`);
  }
  if (out.length !== cols) {
    throw new EdgeMoeError("invalid_argument", op, `out has ${out.length} floats, expected ${cols}`);
  }
  const bytes = bytesOf(t, op);
  const rowBytes = bytes.byteLength / rows;
  const src = bytes.subarray(row * rowBytes, (row + 1) * rowBytes);
  if (t.type === GgmlType.f32) out.set(new Float32Array(src.buffer, src.byteOffset, cols));
  else if (t.type === GgmlType.f16) out.set(new Float16Array(src.buffer, src.byteOffset, cols));
  else out.set(lib.dequantize(typeName(t, op), src, cols));
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
