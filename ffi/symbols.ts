/**
 * The one symbol table of libedgemoe. Each entry carries the C signature in a
 * comment; tests/ffi_symbols_test.ts checks it against zig/src/root.zig.
 *
 * Conventions: `usize` parameters take `bigint`; pointers to caller memory are
 * `buffer` (a TypedArray); every function but `emoe_abi_version` returns an
 * i32 status (0 ok, negative failure; see src/errors.ts).
 *
 * @module
 */

/** The ABI version these bindings speak; must equal `emoe_abi_version()`. */
export const ABI_VERSION = 4;

/** Bit positions of `emoe_cpu_features` (zig/src/cpu.zig `Feature`). */
export const CPU_FEATURE_BITS = {
  avx2: 0,
  fma: 1,
  f16c: 2,
  avx512f: 3,
  avx512bw: 4,
  avx512vl: 5,
  avx512dq: 6,
  avx512vnni: 7,
  avx512bf16: 8,
  amx_int8: 9,
  neon: 16,
  dotprod: 17,
} as const;

/** The symbols, as `Deno.dlopen` wants them. */
export const symbols = {
  /** u32 emoe_abi_version(void) */
  emoe_abi_version: { parameters: [], result: "u32" },
  /** i32 emoe_last_error(u8* buf, usize cap, usize* out_len) */
  emoe_last_error: { parameters: ["buffer", "usize", "buffer"], result: "i32" },
  /** i32 emoe_cpu_features(u64* out) */
  emoe_cpu_features: { parameters: ["buffer"], result: "i32" },
  /** i32 emoe_build_variant(u8* buf, usize cap, usize* out_len) */
  emoe_build_variant: { parameters: ["buffer", "usize", "buffer"], result: "i32" },
  /** i32 emoe_build_supported(u32* out) */
  emoe_build_supported: { parameters: ["buffer"], result: "i32" },
  /** i32 emoe_dot_f32(f32* a, usize a_len, f32* b, usize b_len, f32* out) */
  emoe_dot_f32: { parameters: ["buffer", "usize", "buffer", "usize", "buffer"], result: "i32" },
  /** i32 emoe_matvec_f32(f32* w, usize w_len, f32* x, usize x_len, f32* y, usize y_len, usize rows, usize cols) */
  emoe_matvec_f32: {
    parameters: ["buffer", "usize", "buffer", "usize", "buffer", "usize", "usize", "usize"],
    result: "i32",
  },
  /** i32 emoe_matvec_f16(u16* w, usize w_len, f32* x, usize x_len, f32* y, usize y_len, usize rows, usize cols) */
  emoe_matvec_f16: {
    parameters: ["buffer", "usize", "buffer", "usize", "buffer", "usize", "usize", "usize"],
    result: "i32",
  },
  /** i32 emoe_pool_create(u32 threads, void** out) */
  emoe_pool_create: { parameters: ["u32", "buffer"], result: "i32" },
  /** i32 emoe_pool_destroy(void* pool) */
  emoe_pool_destroy: { parameters: ["pointer"], result: "i32" },
  /** i32 emoe_quantize(u32 type, f32* src, usize n, u8* dst, usize dst_len) */
  emoe_quantize: { parameters: ["u32", "buffer", "usize", "buffer", "usize"], result: "i32" },
  /** i32 emoe_dequantize(u32 type, u8* src, usize src_len, f32* dst, usize n) */
  emoe_dequantize: { parameters: ["u32", "buffer", "usize", "buffer", "usize"], result: "i32" },
  /** i32 emoe_matvec(void* pool, u32 type, u8* w, usize w_len, f32* x, usize x_len, f32* y, usize y_len, usize rows, usize cols) */
  emoe_matvec: {
    parameters: ["pointer", "u32", "buffer", "usize", "buffer", "usize", "buffer", "usize", "usize", "usize"],
    result: "i32",
  },
  /** i32 emoe_store_open(u8* path, usize path_len, StoreOptions* opts, void** out) */
  emoe_store_open: { parameters: ["buffer", "usize", "buffer", "buffer"], result: "i32" },
  /** i32 emoe_store_close(void* store) */
  emoe_store_close: { parameters: ["pointer"], result: "i32" },
  /** i32 emoe_store_submit(void* store, u32 slot, u64 offset, u64 len, u64 checksum, u32 speculative) */
  emoe_store_submit: { parameters: ["pointer", "u32", "u64", "u64", "u64", "u32"], result: "i32" },
  /** i32 emoe_store_wait(void* store, u32 slot, usize* out_addr) */
  emoe_store_wait: { parameters: ["pointer", "u32", "buffer"], result: "i32" },
  /** i32 emoe_store_poll(void* store) */
  emoe_store_poll: { parameters: ["pointer"], result: "i32" },
  /** i32 emoe_store_stats(void* store, StoreStats* out) */
  emoe_store_stats: { parameters: ["pointer", "buffer"], result: "i32" },
  /** i32 emoe_store_need(void* store, u32 slot) */
  emoe_store_need: { parameters: ["pointer", "u32"], result: "i32" },
  /** i32 emoe_store_cancel(void* store, u32 slot, u32 in_flight, u32* out_cancelled) */
  emoe_store_cancel: { parameters: ["pointer", "u32", "u32", "buffer"], result: "i32" },
  /** i32 emoe_checksum64(u8* bytes, usize len, u64* out) */
  emoe_checksum64: { parameters: ["buffer", "usize", "buffer"], result: "i32" },
  /** i32 emoe_matmul(void* pool, u32 type, u8* w, usize w_len, f32* x, usize x_len, f32* y, usize y_len, usize rows, usize cols, usize n_tokens) */
  emoe_matmul: {
    parameters: ["pointer", "u32", "buffer", "usize", "buffer", "usize", "buffer", "usize", "usize", "usize", "usize"],
    result: "i32",
  },
  /** i32 emoe_matmul_many(void* pool, MulDesc* descs, usize n): 10 u64 words per product (see NativeLibrary.matmulMany) */
  emoe_matmul_many: { parameters: ["pointer", "buffer", "usize"], result: "i32" },
  /** i32 emoe_advise_huge_pages(u8* bytes, usize len, usize* out_covered) */
  emoe_advise_huge_pages: { parameters: ["buffer", "usize", "buffer"], result: "i32" },
  /** i32 emoe_rms_norm(f32* x, usize x_len, f32* w, usize w_len, f32* out, usize out_len, usize n, f32 eps) */
  emoe_rms_norm: {
    parameters: ["buffer", "usize", "buffer", "usize", "buffer", "usize", "usize", "f32"],
    result: "i32",
  },
  /** i32 emoe_rope(f32* x, usize x_len, i32* pos, usize n_tokens, usize n_heads, usize head_dim, usize n_dims, f32 base, u32 mode) */
  emoe_rope: {
    parameters: ["buffer", "usize", "buffer", "usize", "usize", "usize", "usize", "f32", "u32"],
    result: "i32",
  },
  /** i32 emoe_swiglu(f32* g, usize g_len, f32* u, usize u_len, f32* out, usize out_len) */
  emoe_swiglu: { parameters: ["buffer", "usize", "buffer", "usize", "buffer", "usize"], result: "i32" },
  /** i32 emoe_softmax(f32* x, usize x_len, usize n, f32 scale) */
  emoe_softmax: { parameters: ["buffer", "usize", "usize", "f32"], result: "i32" },
  /** i32 emoe_attention(void* pool, u32 kv_type, f32* q, usize q_len, u8* k, usize k_len, u8* v, usize v_len, f32* out, usize out_len, usize n_head, usize n_head_kv, usize head_dim, usize n_kv, f32 scale) */
  emoe_attention: {
    parameters: [
      "pointer",
      "u32",
      "buffer",
      "usize",
      "buffer",
      "usize",
      "buffer",
      "usize",
      "buffer",
      "usize",
      "usize",
      "usize",
      "usize",
      "usize",
      "f32",
    ],
    result: "i32",
  },
} as const satisfies Deno.ForeignLibraryInterface;

/**
 * `StoreOptions` (zig/src/io/store.zig `Options`), as u32/u64 fields at these
 * byte offsets; 48 bytes in all (asserted at compile time on the Zig side).
 */
export const STORE_OPTIONS_LAYOUT = {
  size: 48,
  backend: 0,
  slotCount: 4,
  slotBytes: 8,
  queueDepth: 16,
  threads: 20,
  direct: 24,
  faultMode: 28,
  faultAfter: 32,
  maxInFlight: 36,
  readDelayUs: 40,
} as const;

/** `StoreStats` (zig/src/io/store.zig `Stats`): u64 fields in this order. */
export const STORE_STATS_FIELDS = [
  "readsTotal",
  "bytesReadTotal",
  "waitNsTotal",
  "shortReadsTotal",
  "checksumFailuresTotal",
  "ioErrorsTotal",
  "direct",
  "backend",
  "inFlightMax",
  "cancelledTotal",
  "speculativeInFlightMax",
] as const;

/** The opened library's symbol functions. */
export type Symbols = Deno.DynamicLibrary<typeof symbols>["symbols"];
