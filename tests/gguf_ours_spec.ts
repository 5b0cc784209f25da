/**
 * The file edgemoe's writer writes for the gguf-py and llama.cpp checks: every
 * GGUF value type and several tensor types, with deterministic data. Written
 * by tools/fixtures/write_ours.ts to tests/fixtures/gguf/ours.gguf and
 * re-written by tests/gguf_writer_test.ts, which demands the same bytes.
 */
import { GgmlType, type GgufValue } from "../src/gguf/types.ts";
import type { GgufTensorSpec } from "../src/gguf/writer.ts";

/** Deterministic bytes (a small LCG). */
export function patternBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

/** Metadata of ours.gguf. */
export const OURS_METADATA: [string, GgufValue][] = [
  ["general.architecture", { type: "string", value: "llama" }],
  ["general.name", { type: "string", value: "edgemoe writer fixture ✓" }],
  ["general.alignment", { type: "u32", value: 64 }],
  ["test.u8", { type: "u8", value: 255 }],
  ["test.i8", { type: "i8", value: -128 }],
  ["test.u16", { type: "u16", value: 65535 }],
  ["test.i16", { type: "i16", value: -32768 }],
  ["test.u32", { type: "u32", value: 4294967295 }],
  ["test.i32", { type: "i32", value: -2147483648 }],
  ["test.f32", { type: "f32", value: 0.5 }],
  ["test.bool", { type: "bool", value: false }],
  ["test.u64", { type: "u64", value: 18446744073709551615n }],
  ["test.i64", { type: "i64", value: -9223372036854775808n }],
  ["test.f64", { type: "f64", value: -1.25e300 }],
  ["test.arr.u8", { type: "array", itemType: "u8", value: new Uint8Array([0, 1, 255]) }],
  ["test.arr.i8", { type: "array", itemType: "i8", value: new Int8Array([-1, 2]) }],
  ["test.arr.u16", { type: "array", itemType: "u16", value: new Uint16Array([3, 65535]) }],
  ["test.arr.i16", { type: "array", itemType: "i16", value: new Int16Array([-4, 4]) }],
  ["test.arr.u32", { type: "array", itemType: "u32", value: new Uint32Array([5, 6, 7]) }],
  ["test.arr.i32", { type: "array", itemType: "i32", value: new Int32Array([-8, 9]) }],
  ["test.arr.f32", { type: "array", itemType: "f32", value: new Float32Array([0.25, -2]) }],
  ["test.arr.f64", { type: "array", itemType: "f64", value: new Float64Array([1e-300, 3]) }],
  ["test.arr.u64", { type: "array", itemType: "u64", value: new BigUint64Array([0n, 1n << 63n]) }],
  ["test.arr.i64", { type: "array", itemType: "i64", value: new BigInt64Array([-1n, 1n << 40n]) }],
  ["test.arr.bool", { type: "array", itemType: "bool", value: [true, false] }],
  ["test.arr.string", { type: "array", itemType: "string", value: ["<s>", "ĠHello", "", "日本"] }],
];

/** Tensors of ours.gguf (dims in GGML order). */
export function oursTensors(): GgufTensorSpec[] {
  const t = (name: string, type: number, dims: number[], bytes: number, seed: number): GgufTensorSpec => ({
    name,
    type,
    dims,
    data: patternBytes(bytes, seed),
  });
  return [
    t("token_embd.weight", GgmlType.f32, [8, 3], 96, 1),
    t("blk.0.attn_q.weight", GgmlType.f16, [16, 2], 64, 2),
    t("blk.0.ffn_down.weight", GgmlType.q8_0, [64, 2], 136, 3),
    t("blk.0.ffn_up.weight", GgmlType.q4_k, [256, 2], 288, 4),
    t("blk.0.ffn_gate.weight", GgmlType.q6_k, [256], 210, 5),
    t("blk.0.attn_k.weight", GgmlType.bf16, [4, 1, 3, 2], 48, 6),
    // streamed in uneven chunks
    {
      name: "output.weight",
      type: GgmlType.q4_0,
      dims: [32, 3],
      data: async function* () {
        const all = patternBytes(54, 7);
        yield all.subarray(0, 5);
        yield all.subarray(5, 40);
        yield all.subarray(40);
      },
    },
  ];
}
