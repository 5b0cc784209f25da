/**
 * Test helpers: llama.cpp's own GGUF parser (libggml-base `gguf_init_from_file`)
 * as an oracle, and the canonical JSON form of metadata that the fixture
 * generator (tools/fixtures/make_gguf.py) writes.
 */
import type { GgufFile } from "../src/gguf/reader.ts";
import type { GgufValue } from "../src/gguf/types.ts";

const LIB = new URL(
  "../.tools/npm/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libggml-base.so",
  import.meta.url,
).pathname;

/** What llama.cpp's GGUF parser sees in a file. */
export interface LlamaGgufView {
  nKv: number;
  alignment: number;
  dataOffset: number;
  tensors: { name: string; type: number; offset: number }[];
}

/** Parses `path` with llama.cpp's `gguf_init_from_file`; `null` if llama.cpp refuses it. */
export function llamaGguf(path: string): LlamaGgufView | null {
  const lib = Deno.dlopen(LIB, {
    gguf_init_from_file: { parameters: ["buffer", { struct: ["u8", "pointer"] }], result: "pointer" },
    gguf_free: { parameters: ["pointer"], result: "void" },
    gguf_get_n_kv: { parameters: ["pointer"], result: "i64" },
    gguf_get_n_tensors: { parameters: ["pointer"], result: "i64" },
    gguf_get_alignment: { parameters: ["pointer"], result: "usize" },
    gguf_get_data_offset: { parameters: ["pointer"], result: "usize" },
    gguf_get_tensor_name: { parameters: ["pointer", "i64"], result: "pointer" },
    gguf_get_tensor_type: { parameters: ["pointer", "i64"], result: "i32" },
    gguf_get_tensor_offset: { parameters: ["pointer", "i64"], result: "usize" },
  });
  try {
    const s = lib.symbols;
    const params = new Uint8Array(16);
    params[0] = 1; // no_alloc = true, ctx = NULL: parse only
    const ctx = s.gguf_init_from_file(new TextEncoder().encode(path + "\0"), params);
    if (ctx === null) return null;
    try {
      const n = Number(s.gguf_get_n_tensors(ctx));
      const tensors = [];
      for (let i = 0n; i < BigInt(n); i++) {
        tensors.push({
          name: new Deno.UnsafePointerView(s.gguf_get_tensor_name(ctx, i)!).getCString(),
          type: s.gguf_get_tensor_type(ctx, i),
          offset: Number(s.gguf_get_tensor_offset(ctx, i)),
        });
      }
      return {
        nKv: Number(s.gguf_get_n_kv(ctx)),
        alignment: Number(s.gguf_get_alignment(ctx)),
        dataOffset: Number(s.gguf_get_data_offset(ctx)),
        tensors,
      };
    } finally {
      s.gguf_free(ctx);
    }
  } finally {
    lib.close();
  }
}

/** A metadata value in the generator's JSON form (u64/i64 as decimal strings, arrays as lists). */
export function canonValue(v: GgufValue): unknown {
  const item = (x: unknown) => (typeof x === "bigint" ? x.toString() : x);
  if (v.type === "array") {
    return { type: "array", itemType: v.itemType, value: Array.from(v.value as ArrayLike<unknown>, item) };
  }
  return { type: v.type, value: item(v.value) };
}

/** All metadata of `f` in the generator's JSON form. */
export function canonMetadata(f: GgufFile): Record<string, unknown> {
  return Object.fromEntries([...f.metadata].map(([k, v]) => [k, canonValue(v)]));
}

/** Lower-case hex SHA-256 of `bytes`. */
export async function sha256(bytes: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return [...d].map((b) => b.toString(16).padStart(2, "0")).join("");
}
