/**
 * GGML tensor types and GGUF metadata value types: the one TypeScript table,
 * matching zig/src/kernels/types.zig (ids from ggml.h `enum ggml_type`, block
 * sizes from GGML's `type_traits`).
 *
 * @module
 */
import { EdgeMoeError } from "../errors.ts";

/** One GGML tensor type: its GGUF id, name, elements per block and bytes per block. */
export interface GgmlTypeInfo {
  /** The id stored in a GGUF tensor info (ggml.h `enum ggml_type`). */
  readonly id: number;
  /** Lower-case name, as llama.cpp prints it (`"q4_k"`). */
  readonly name: string;
  /** Elements per block (1 for float types). */
  readonly blockElems: number;
  /** Bytes per block (GGML's `type_size`). */
  readonly blockBytes: number;
}

/** The GGML types edgemoe knows, by id. Others are refused with `unsupported`. */
export const GGML_TYPES: readonly GgmlTypeInfo[] = [
  { id: 0, name: "f32", blockElems: 1, blockBytes: 4 },
  { id: 1, name: "f16", blockElems: 1, blockBytes: 2 },
  { id: 2, name: "q4_0", blockElems: 32, blockBytes: 18 },
  { id: 3, name: "q4_1", blockElems: 32, blockBytes: 20 },
  { id: 6, name: "q5_0", blockElems: 32, blockBytes: 22 },
  { id: 7, name: "q5_1", blockElems: 32, blockBytes: 24 },
  { id: 8, name: "q8_0", blockElems: 32, blockBytes: 34 },
  { id: 9, name: "q8_1", blockElems: 32, blockBytes: 36 },
  { id: 10, name: "q2_k", blockElems: 256, blockBytes: 84 },
  { id: 11, name: "q3_k", blockElems: 256, blockBytes: 110 },
  { id: 12, name: "q4_k", blockElems: 256, blockBytes: 144 },
  { id: 13, name: "q5_k", blockElems: 256, blockBytes: 176 },
  { id: 14, name: "q6_k", blockElems: 256, blockBytes: 210 },
  { id: 15, name: "q8_k", blockElems: 256, blockBytes: 292 },
  { id: 30, name: "bf16", blockElems: 1, blockBytes: 2 },
];

/** GGML type ids by name, for code that names a type: `GgmlType.q4_k === 12`. */
export const GgmlType = Object.freeze(Object.fromEntries(GGML_TYPES.map((t) => [t.name, t.id]))) as Readonly<
  Record<
    | "f32"
    | "f16"
    | "q4_0"
    | "q4_1"
    | "q5_0"
    | "q5_1"
    | "q8_0"
    | "q8_1"
    | "q2_k"
    | "q3_k"
    | "q4_k"
    | "q5_k"
    | "q6_k"
    | "q8_k"
    | "bf16",
    number
  >
>;

const BY_ID: ReadonlyMap<number, GgmlTypeInfo> = new Map(GGML_TYPES.map((t) => [t.id, t]));
const BY_NAME: ReadonlyMap<string, GgmlTypeInfo> = new Map(GGML_TYPES.map((t) => [t.name, t]));

/** The type with GGUF id `id`, or `undefined` if edgemoe does not know it. */
export function ggmlTypeById(id: number): GgmlTypeInfo | undefined {
  return BY_ID.get(id);
}

/**
 * The type named `name` (case-insensitive, e.g. `"Q4_K"`).
 *
 * @throws {EdgeMoeError} `invalid_argument` listing the known names.
 */
export function ggmlTypeByName(name: string): GgmlTypeInfo {
  const t = BY_NAME.get(name.toLowerCase());
  if (!t) {
    throw new EdgeMoeError(
      "invalid_argument",
      "ggml type",
      `unknown type "${name}", expected one of ${GGML_TYPES.map((x) => x.name).join(", ")}`,
    );
  }
  return t;
}

/**
 * Bytes of a tensor of `type` with `elems` elements, as a bigint (no overflow),
 * or `undefined` if `elems` is not a multiple of the block size.
 */
export function tensorBytes(type: GgmlTypeInfo, elems: bigint): bigint | undefined {
  const be = BigInt(type.blockElems);
  if (elems % be !== 0n) return undefined;
  return (elems / be) * BigInt(type.blockBytes);
}

/** GGUF metadata value type ids (gguf.h `enum gguf_type`). */
export const GgufValueType: Readonly<
  { u8: 0; i8: 1; u16: 2; i16: 3; u32: 4; i32: 5; f32: 6; bool: 7; string: 8; array: 9; u64: 10; i64: 11; f64: 12 }
> = Object.freeze({
  u8: 0,
  i8: 1,
  u16: 2,
  i16: 3,
  u32: 4,
  i32: 5,
  f32: 6,
  bool: 7,
  string: 8,
  array: 9,
  u64: 10,
  i64: 11,
  f64: 12,
});

/** A GGUF metadata value type by name. */
export type GgufValueTypeName = keyof typeof GgufValueType;

/** Value types held as a JS `number`. */
export type GgufNumberType = "u8" | "i8" | "u16" | "i16" | "u32" | "i32" | "f32" | "f64";
/** Value types held as a JS `bigint`. */
export type GgufBigIntType = "u64" | "i64";
/** Element types an array may have (GGUF allows no nested arrays here, as llama.cpp). */
export type GgufArrayItemType = Exclude<GgufValueTypeName, "array">;

/** Names of the GGUF value types by id. */
export const GGUF_VALUE_TYPE_NAMES: readonly GgufValueTypeName[] = Object.keys(GgufValueType) as GgufValueTypeName[];

/** Bytes of one fixed-size GGUF value of `type` (`undefined` for string and array). */
export function scalarBytes(type: GgufValueTypeName): number | undefined {
  switch (type) {
    case "u8":
    case "i8":
    case "bool":
      return 1;
    case "u16":
    case "i16":
      return 2;
    case "u32":
    case "i32":
    case "f32":
      return 4;
    case "u64":
    case "i64":
    case "f64":
      return 8;
    default:
      return undefined;
  }
}

/** Typed arrays by numeric element type (how arrays of numbers are held). */
export interface GgufTypedArrays {
  /** u8 items. */
  u8: Uint8Array;
  /** i8 items. */
  i8: Int8Array;
  /** u16 items. */
  u16: Uint16Array;
  /** i16 items. */
  i16: Int16Array;
  /** u32 items. */
  u32: Uint32Array;
  /** i32 items. */
  i32: Int32Array;
  /** f32 items. */
  f32: Float32Array;
  /** f64 items. */
  f64: Float64Array;
  /** u64 items. */
  u64: BigUint64Array;
  /** i64 items. */
  i64: BigInt64Array;
}

/**
 * A metadata value with its GGUF type. Arrays of numbers are typed arrays,
 * arrays of strings are `string[]`, arrays of bools are `boolean[]`.
 */
export type GgufValue =
  | { type: GgufNumberType; value: number }
  | { type: GgufBigIntType; value: bigint }
  | { type: "bool"; value: boolean }
  | { type: "string"; value: string }
  | GgufArrayValue;

/** A GGUF array value. */
export type GgufArrayValue =
  | { [K in keyof GgufTypedArrays]: { type: "array"; itemType: K; value: GgufTypedArrays[K] } }[keyof GgufTypedArrays]
  | { type: "array"; itemType: "bool"; value: boolean[] }
  | { type: "array"; itemType: "string"; value: string[] };

/**
 * K-quant → legacy type for matrices whose rows do not fill 256-element
 * blocks, as llama.cpp's quantizer falls back (Q2_K and Q3_K go to IQ4_NL
 * there; Q4_0, the same size, here).
 */
const ROW_FALLBACK: Readonly<Record<string, string>> = {
  q2_k: "q4_0",
  q3_k: "q4_0",
  q4_k: "q5_0",
  q5_k: "q5_1",
  q6_k: "q8_0",
};

/**
 * The type a matrix with rows of `cols` elements gets when `name` is asked
 * for: `name` itself if its blocks fit, else the fallback above if that fits,
 * else undefined.
 *
 * @throws {EdgeMoeError} `invalid_argument` for an unknown type name.
 */
export function typeForRows(name: string, cols: number): GgmlTypeInfo | undefined {
  const t = ggmlTypeByName(name);
  if (cols % t.blockElems === 0) return t;
  const f = ROW_FALLBACK[t.name];
  return f !== undefined && cols % ggmlTypeByName(f).blockElems === 0 ? ggmlTypeByName(f) : undefined;
}
