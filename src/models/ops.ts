/**
 * Weight-matrix products of a transformer layer on f32 activations, through
 * the native kernels: a tensor's shape and bytes checked, then matvec (one
 * token) or matmul (a chunk of tokens). The element-wise steps (RMSNorm,
 * RoPE, SwiGLU, attention) are native too: `NativeLibrary.rmsNorm` etc.
 *
 * @module
 */
import { EdgeMoeError } from "../errors.ts";
import type { GgmlTypeName, MatmulItem, NativeLibrary, ThreadPool } from "../../ffi/native.ts";
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

/** One product of {@linkcode matmulMany}: `Y[i] = W·X[i]` for `nTokens` tokens (see {@linkcode matmul}). */
export interface Product {
  /** The weight matrix (`rows × cols`). */
  w: TensorData;
  /** `nTokens × cols` activations. */
  x: Float32Array;
  /** `nTokens × rows` outputs. */
  y: Float32Array;
  /** Tokens in `x` and `y`. */
  nTokens: number;
}

/** A weight tensor as the kernels take it: type name, checked (and 4-byte aligned) bytes, shape. */
interface Checked {
  type: GgmlTypeName;
  w: Uint8Array;
  rows: number;
  cols: number;
}

/** Each tensor's checks, done once: a decode step multiplies the same tensors hundreds of times. */
const checkedTensors = new WeakMap<TensorData, Checked>();

function checked(w: TensorData, op: string): Checked {
  let c = checkedTensors.get(w);
  if (!c) {
    c = { type: typeName(w, op), w: bytesOf(w, op), ...matrixShape(w) };
    checkedTensors.set(w, c);
  }
  return c;
}

/** A product as the native library takes it, its shape checked against `x` and `y`. */
function item({ w, x, y, nTokens }: Product): MatmulItem {
  const c = checked(w, "matmul");
  const { rows, cols } = c;
  if (x.length !== nTokens * cols || y.length !== nTokens * rows) {
    throw new EdgeMoeError(
      "invalid_argument",
      `matmul ${w.name}`,
      `expected x[${nTokens}×${cols}] → y[${nTokens}×${rows}], got x[${x.length}] → y[${y.length}]`,
    );
  }
  return { type: c.type, w: c.w, x, y, rows, cols, nTokens };
}

/**
 * `Y[i] = W·X[i]` for a weight matrix `W` (`rows × cols`, GGUF `dims = [cols,
 * rows]`) of any GGML weight type and `nTokens` tokens stored one after another
 * in `x` (`nTokens × cols`) and `y` (`nTokens × rows`). The native kernels
 * convert `x` to the type's activation format as GGML does (Q8 blocks, f16 for
 * F16, bf16 for BF16); one token is a matvec, more a matmul, which reads the weights once for
 * all tokens and gives each `Y[i]` bit-identical to the matvec of `X[i]`.
 *
 * @throws {EdgeMoeError} `invalid_argument` on shape mismatch, `unsupported` for an unknown type.
 */
export function matmul(
  lib: NativeLibrary,
  w: TensorData,
  x: Float32Array,
  y: Float32Array,
  nTokens: number,
  pool?: ThreadPool,
): void {
  const it = item({ w, x, y, nTokens });
  if (nTokens === 1) lib.matvec(it.type, it.w, x, y, it.rows, it.cols, pool);
  else lib.matmul(it.type, it.w, x, y, it.rows, it.cols, nTokens, pool);
}

/**
 * Several {@linkcode matmul}s in one native call and one pass over the pool
 * (`NativeLibrary.matmulMany`): each `y` gets the same bits as its own
 * `matmul`. For the many small matrices of one layer (q/k/v; every routed
 * expert's gate and up, then their down projections), where a dispatch per
 * matrix costs about as much as the matrix. Outputs must not overlap.
 *
 * @throws {EdgeMoeError} as {@linkcode matmul}, for the first product that fails.
 */
export function matmulMany(lib: NativeLibrary, products: readonly Product[], pool?: ThreadPool): void {
  lib.matmulMany(products.map(item), pool);
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

/** Adds `b` to `a` in place. */
export function addInPlace(a: Float32Array, b: Float32Array): void {
  for (let i = 0; i < a.length; i++) a[i] += b[i];
}
