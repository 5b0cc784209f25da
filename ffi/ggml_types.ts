/**
 * GGML tensor types by GGUF type id, with block sizes (GGML's `blck_size` /
 * `type_size`); the TypeScript twin of zig/src/kernels/types.zig.
 *
 * @module
 */

/** Block shape of each GGML type edgemoe knows. */
export const GGML_TYPES = {
  f32: { id: 0, blockElems: 1, blockBytes: 4 },
  f16: { id: 1, blockElems: 1, blockBytes: 2 },
  q4_0: { id: 2, blockElems: 32, blockBytes: 18 },
  q4_1: { id: 3, blockElems: 32, blockBytes: 20 },
  q5_0: { id: 6, blockElems: 32, blockBytes: 22 },
  q5_1: { id: 7, blockElems: 32, blockBytes: 24 },
  q8_0: { id: 8, blockElems: 32, blockBytes: 34 },
  q8_1: { id: 9, blockElems: 32, blockBytes: 36 },
  q2_k: { id: 10, blockElems: 256, blockBytes: 84 },
  q3_k: { id: 11, blockElems: 256, blockBytes: 110 },
  q4_k: { id: 12, blockElems: 256, blockBytes: 144 },
  q5_k: { id: 13, blockElems: 256, blockBytes: 176 },
  q6_k: { id: 14, blockElems: 256, blockBytes: 210 },
  q8_k: { id: 15, blockElems: 256, blockBytes: 292 },
  bf16: { id: 30, blockElems: 1, blockBytes: 2 },
} as const;

/** A GGML type name, e.g. `"q4_0"`. */
export type GgmlTypeName = keyof typeof GGML_TYPES;

/**
 * Bytes of `n` elements of `type`, or an explanation why `n` does not fit
 * (not a non-negative integer, or not a whole number of blocks).
 */
export function ggmlBytes(type: GgmlTypeName, n: number): number | string {
  const t = GGML_TYPES[type];
  if (!t) return `unknown GGML type ${String(type)}`;
  if (!Number.isSafeInteger(n) || n < 0) return `element count must be a non-negative integer, got ${n}`;
  if (n % t.blockElems !== 0) return `${n} is not a multiple of the ${type} block size ${t.blockElems}`;
  return (n / t.blockElems) * t.blockBytes;
}
