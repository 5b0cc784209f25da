/**
 * `NativeLibrary`: the owner of the opened libedgemoe, with typed, checked
 * wrappers around its exports. Shapes and lengths are checked here before a
 * call and again on the native side.
 *
 * @module
 */
import { EdgeMoeError, errorFromStatus } from "../src/errors.ts";
import { CPU_FEATURE_BITS, type Symbols } from "./symbols.ts";
import { type LoadOptions, openNativeLibrary } from "./load.ts";
import { SlotReader, type SlotReaderOptions } from "./slot_reader.ts";
import { type GgmlType, ggmlTypeByName, type GgmlTypeInfo } from "../src/gguf/types.ts";

const decoder = new TextDecoder();

function checkLength(op: string, name: string, got: number, want: number): void {
  if (got !== want) throw new EdgeMoeError("invalid_argument", op, `${name} has ${got} elements, expected ${want}`);
}

function checkDims(op: string, rows: number, cols: number): void {
  for (const [name, v] of [["rows", rows], ["cols", cols]] as const) {
    if (!Number.isSafeInteger(v) || v < 0) {
      throw new EdgeMoeError("invalid_argument", op, `${name} must be a non-negative integer, got ${v}`);
    }
  }
}

function checkRows(op: string, len: number, n: number): void {
  if (!Number.isSafeInteger(n) || n < 1 || len % n !== 0) {
    throw new EdgeMoeError("invalid_argument", op, `row length ${n} must be a positive integer dividing ${len}`);
  }
}

/** A GGML type name, e.g. `"q4_0"` (see `GGML_TYPES` in src/gguf/types.ts). */
export type GgmlTypeName = keyof typeof GgmlType;

/** One product of {@linkcode NativeLibrary.matmulMany}: `Y[i] = W·X[i]` for `nTokens` tokens, as `matmul`'s arguments. */
export interface MatmulItem {
  /** The weights' GGML type. */
  type: GgmlTypeName;
  /** `rows` rows of `cols` elements of `type`. */
  w: Uint8Array;
  /** `nTokens × cols` activations. */
  x: Float32Array;
  /** `nTokens × rows` outputs. */
  y: Float32Array;
  /** Rows of `w` (outputs per token). */
  rows: number;
  /** Elements per row of `w` (inputs per token), a multiple of the type's block size. */
  cols: number;
  /** Tokens in `x` and `y`. */
  nTokens: number;
}

/** Base addresses of large buffers (`Deno.UnsafePointer.of` costs ~0.5 µs, and matmulMany passes ~30 views per layer). */
const bufferAddresses = new WeakMap<ArrayBufferLike, number>();

/**
 * The address of a view's first byte. Buffers of 4 KiB and more live outside
 * V8's heap and never move, so their base address is looked up once; smaller
 * ones may be on the heap (movable by the collector) and are asked each time.
 */
function address(a: ArrayBufferView): number {
  if (a.byteLength === 0) return 0;
  const num = (p: bigint | number) => Number(p);
  const buf = a.buffer;
  if (buf.byteLength < 4096) return num(Deno.UnsafePointer.value(Deno.UnsafePointer.of(a)));
  let base = bufferAddresses.get(buf);
  if (base === undefined) {
    base = num(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf)));
    bufferAddresses.set(buf, base);
  }
  return base + a.byteOffset;
}

/** Checks a matmul's shapes and lengths (product `index` of a `matmulMany`, if given); returns its type. */
function checkMul(
  name: string,
  type: GgmlTypeName,
  w: Uint8Array,
  x: Float32Array,
  y: Float32Array,
  rows: number,
  cols: number,
  nTokens: number,
  index?: number,
): GgmlTypeInfo {
  const op = index === undefined ? name : `${name} product ${index}`;
  const t = typeOf(op, type);
  checkDims(op, rows, cols);
  if (!Number.isSafeInteger(nTokens) || nTokens < 0) {
    throw new EdgeMoeError("invalid_argument", op, `nTokens must be a non-negative integer, got ${nTokens}`);
  }
  checkLength(op, "w bytes", w.length, rows * bytesOf(op, t, cols, "cols"));
  checkLength(op, "x", x.length, nTokens * cols);
  checkLength(op, "y", y.length, nTokens * rows);
  return t;
}

function typeOf(op: string, type: GgmlTypeName): GgmlTypeInfo {
  try {
    return ggmlTypeByName(type);
  } catch (e) {
    throw new EdgeMoeError("invalid_argument", op, (e as Error).message, { cause: e });
  }
}

function bytesOf(op: string, t: GgmlTypeInfo, n: number, what: string): number {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new EdgeMoeError("invalid_argument", op, `${what} must be a non-negative integer, got ${n}`);
  }
  if (n % t.blockElems !== 0) {
    throw new EdgeMoeError(
      "invalid_argument",
      op,
      `${what} = ${n} is not a multiple of the ${t.name} block size ${t.blockElems}`,
    );
  }
  // Number arithmetic (this runs for every matrix product): exact while the byte count is a safe integer.
  const b = (n / t.blockElems) * t.blockBytes;
  if (!Number.isSafeInteger(b)) throw new EdgeMoeError("invalid_argument", op, `${what} = ${n} is too large`);
  return b;
}

/**
 * A fixed-size pool of native threads for row-parallel kernels, created by
 * {@linkcode NativeLibrary.createPool}. Results do not depend on its size.
 */
export class ThreadPool implements Disposable {
  #handle: Deno.PointerValue;
  #destroy: (p: Deno.PointerValue) => void;
  /** Threads in the pool, the calling thread included. */
  readonly threads: number;

  /** @internal Use {@linkcode NativeLibrary.createPool}. */
  constructor(handle: Deno.PointerObject, threads: number, destroy: (p: Deno.PointerValue) => void) {
    this.#handle = handle;
    this.threads = threads;
    this.#destroy = destroy;
  }

  /** @internal The native handle; throws once closed. */
  handle(op: string): Deno.PointerObject {
    if (!this.#handle) throw new EdgeMoeError("closed", op, "the thread pool was closed");
    return this.#handle;
  }

  /** Stops the threads and frees the pool. Idempotent. */
  close(): void {
    if (!this.#handle) return;
    const h = this.#handle;
    this.#handle = null;
    this.#destroy(h);
  }

  /** Same as `close()`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/** The opened native library. Close it (or use `using`) when done. */
export class NativeLibrary implements Disposable {
  #dl: Deno.DynamicLibrary<typeof import("./symbols.ts").symbols> | undefined;
  #sym: Symbols;
  /** The file that was opened. */
  readonly path: string;
  /** The instruction-set variant it was built for, e.g. `"x86_64-avx512"`. */
  readonly variant: string;
  readonly #features: bigint;
  readonly #pools = new Set<ThreadPool>();

  private constructor(dl: Deno.DynamicLibrary<typeof import("./symbols.ts").symbols>, path: string) {
    this.#dl = dl;
    this.#sym = dl.symbols;
    this.path = path;
    this.variant = this.#text("build variant", (buf, cap, len) => this.#sym.emoe_build_variant(buf, cap, len));
    const f = new BigUint64Array(1);
    this.#check("cpu features", this.#sym.emoe_cpu_features(f));
    this.#features = f[0];
  }

  /**
   * Finds, opens and ABI-checks the library.
   *
   * @throws {EdgeMoeError} see `openNativeLibrary`.
   */
  static open(opts: LoadOptions = {}): NativeLibrary {
    const { dl, path } = openNativeLibrary(opts);
    return new NativeLibrary(dl, path);
  }

  /** CPU features detected at run time, by name. */
  cpuFeatures(): string[] {
    return Object.entries(CPU_FEATURE_BITS).filter(([, bit]) => (this.#features >> BigInt(bit)) & 1n).map(([n]) => n);
  }

  /** `a · b` for two f32 vectors of equal length. */
  dotF32(a: Float32Array, b: Float32Array): number {
    const op = "dot f32";
    checkLength(op, "b", b.length, a.length);
    const out = new Float32Array(1);
    this.#check(op, this.#syms().emoe_dot_f32(a, BigInt(a.length), b, BigInt(b.length), out));
    return out[0];
  }

  /** `y = W·x` with W row-major f32 `rows × cols`. */
  matvecF32(w: Float32Array, x: Float32Array, y: Float32Array, rows: number, cols: number): void {
    const op = "matvec f32";
    this.#shape(op, w.length, x.length, y.length, rows, cols);
    this.#check(
      op,
      this.#syms().emoe_matvec_f32(
        w,
        BigInt(w.length),
        x,
        BigInt(x.length),
        y,
        BigInt(y.length),
        BigInt(rows),
        BigInt(cols),
      ),
    );
  }

  /**
   * `y = W·x` with W row-major IEEE half floats (as raw `Uint16Array` bits) `rows × cols`; `x` is rounded to
   * half floats first, as GGML's F16 matvec.
   */
  matvecF16(w: Uint16Array, x: Float32Array, y: Float32Array, rows: number, cols: number): void {
    const op = "matvec f16";
    this.#shape(op, w.length, x.length, y.length, rows, cols);
    this.#check(
      op,
      this.#syms().emoe_matvec_f16(
        w,
        BigInt(w.length),
        x,
        BigInt(x.length),
        y,
        BigInt(y.length),
        BigInt(rows),
        BigInt(cols),
      ),
    );
  }

  /**
   * A pool of `threads` native threads (the calling thread included),
   * allocated now. Closed with the library if not closed before.
   */
  createPool(threads: number): ThreadPool {
    const op = "create thread pool";
    if (!Number.isSafeInteger(threads) || threads < 1 || threads > 256) {
      throw new EdgeMoeError("invalid_argument", op, `threads must be an integer in 1..256, got ${threads}`);
    }
    const out = new BigUint64Array(1);
    this.#check(op, this.#syms().emoe_pool_create(threads, out));
    const handle = Deno.UnsafePointer.create(out[0]);
    if (!handle) throw new EdgeMoeError("native_error", op, "the library returned a null pool");
    const sym = this.#sym;
    const pool = new ThreadPool(handle, threads, (p) => {
      this.#pools.delete(pool);
      sym.emoe_pool_destroy(p);
    });
    this.#pools.add(pool);
    return pool;
  }

  /** Quantizes `src` to GGML type `type` (GGML's block layout, bit-compatible); `src.length` must fill whole blocks. */
  quantize(type: GgmlTypeName, src: Float32Array): Uint8Array {
    const op = `quantize ${type}`;
    const t = typeOf(op, type);
    const dst = new Uint8Array(bytesOf(op, t, src.length, "src length"));
    this.#check(op, this.#syms().emoe_quantize(t.id, src, BigInt(src.length), dst, BigInt(dst.length)));
    return dst;
  }

  /** Dequantizes `n` elements of GGML type `type` from `src` (exactly their bytes) to f32. */
  dequantize(type: GgmlTypeName, src: Uint8Array, n: number): Float32Array {
    const op = `dequantize ${type}`;
    const t = typeOf(op, type);
    checkLength(op, "src bytes", src.length, bytesOf(op, t, n, "n"));
    const dst = new Float32Array(n);
    this.#check(op, this.#syms().emoe_dequantize(t.id, src, BigInt(src.length), dst, BigInt(n)));
    return dst;
  }

  /**
   * `y = W·x` for W of GGML type `type`, `rows` rows of `cols` elements
   * (`w.length` = rows × the type's bytes for `cols`). Activations are
   * converted once to the type's vec_dot format, as GGML does: Q8_0/Q8_1/Q8_K
   * for the quantized types, f16 for F16 weights, bf16 for BF16, f32 for F32.
   * Rows are split over `pool` if given. The same as
   * {@linkcode NativeLibrary.matmul} with one token.
   */
  matvec(
    type: GgmlTypeName,
    w: Uint8Array,
    x: Float32Array,
    y: Float32Array,
    rows: number,
    cols: number,
    pool?: ThreadPool,
  ): void {
    this.#mul(`matvec ${type}`, type, w, x, y, rows, cols, 1, pool);
  }

  /**
   * `Y[i] = W·X[i]` for `nTokens` tokens: `x` holds the tokens' activations one
   * after another (`nTokens × cols`), `y` receives their outputs (`nTokens ×
   * rows`). Each `Y[i]` is bit-identical to {@linkcode NativeLibrary.matvec} of
   * `X[i]`, but the weights are read once for all tokens. Rows are split over
   * `pool` if given.
   */
  matmul(
    type: GgmlTypeName,
    w: Uint8Array,
    x: Float32Array,
    y: Float32Array,
    rows: number,
    cols: number,
    nTokens: number,
    pool?: ThreadPool,
  ): void {
    this.#mul(`matmul ${type}`, type, w, x, y, rows, cols, nTokens, pool);
  }

  /**
   * Every product of `items` ({@linkcode NativeLibrary.matmul}'s arguments
   * each) in one pass over `pool`: their rows are laid end to end and split
   * between the threads, so many small matrices (a layer's q/k/v projections,
   * the gate and up projections of all its routed experts) cost one dispatch
   * instead of one each, and activations shared by several products (the same
   * `x` view) are converted once. Each output is bit-identical to `matmul` of
   * its product alone. Outputs must not overlap one another.
   */
  matmulMany(items: readonly MatmulItem[], pool?: ThreadPool): void {
    const op = "matmul_many";
    // Ten u64 words per product, written as u32 halves: no BigInt on this per-layer path.
    const words = new Uint32Array(items.length * 20);
    let at = 0;
    const put = (v: number) => {
      words[at++] = v >>> 0;
      words[at++] = Math.floor(v / 0x1_0000_0000);
    };
    const ptr = (a: ArrayBufferView) => put(address(a));
    for (let i = 0; i < items.length; i++) {
      const it = items[i];
      const t = checkMul(op, it.type, it.w, it.x, it.y, it.rows, it.cols, it.nTokens, i);
      put(t.id);
      ptr(it.w);
      put(it.w.length);
      ptr(it.x);
      put(it.x.length);
      ptr(it.y);
      put(it.y.length);
      put(it.rows);
      put(it.cols);
      put(it.nTokens);
    }
    this.#check(op, this.#syms().emoe_matmul_many(pool ? pool.handle(op) : null, words, BigInt(items.length)));
  }

  /**
   * A zeroed buffer of `bytes` bytes for weights that decode streams from
   * (resident tensors, experts held in RAM): from 4 MiB up, the kernel is
   * advised to back it with 2 MiB transparent huge pages (its zeroed pages
   * dropped, to come back huge when filled), which saves most TLB misses on
   * weights read in random order (see zig/src/huge_pages.zig). Where the
   * kernel has no huge pages it is an ordinary buffer.
   */
  allocateWeights(bytes: number): Uint8Array {
    const out = new Uint8Array(bytes);
    if (bytes >= 4 << 20) {
      const covered = new BigUint64Array(1);
      this.#check("advise huge pages", this.#syms().emoe_advise_huge_pages(out, BigInt(bytes), covered));
    }
    return out;
  }

  #mul(
    op: string,
    type: GgmlTypeName,
    w: Uint8Array,
    x: Float32Array,
    y: Float32Array,
    rows: number,
    cols: number,
    nTokens: number,
    pool?: ThreadPool,
  ): void {
    const t = checkMul(op, type, w, x, y, rows, cols, nTokens);
    this.#check(
      op,
      this.#syms().emoe_matmul(
        pool ? pool.handle(op) : null,
        t.id,
        w,
        BigInt(w.length),
        x,
        BigInt(x.length),
        y,
        BigInt(y.length),
        BigInt(rows),
        BigInt(cols),
        BigInt(nTokens),
      ),
    );
  }

  /**
   * RMSNorm as GGML's `rms_norm` then `mul`: every row of `n` elements of `x`
   * becomes `x / sqrt(mean(x²) + eps) * w` in `out` (Σx² in f64; `w` of `n`
   * elements or undefined; `out` may be `x`).
   */
  rmsNorm(x: Float32Array, w: Float32Array | undefined, eps: number, out: Float32Array, n: number = x.length): void {
    const op = "rms_norm";
    checkRows(op, x.length, n);
    checkLength(op, "out", out.length, x.length);
    if (w) checkLength(op, "w", w.length, n);
    this.#check(
      op,
      this.#syms().emoe_rms_norm(
        x,
        BigInt(x.length),
        w ?? null,
        BigInt(w?.length ?? 0),
        out,
        BigInt(out.length),
        BigInt(n),
        eps,
      ),
    );
  }

  /**
   * Rotary position embedding in place, as GGML's `rope_ext` (no YaRN): `x`
   * holds `positions.length` tokens × `nHeads` heads × `headDim`; each token's
   * heads turn by its position over their first `nDims` dims, in GGML's
   * `"norm"` (adjacent pairs) or `"neox"` (halves) mode.
   */
  rope(
    x: Float32Array,
    positions: Int32Array,
    shape: { nHeads: number; headDim: number; nDims: number; base: number; mode: "norm" | "neox" },
  ): void {
    const op = "rope";
    const { nHeads, headDim, nDims, base, mode } = shape;
    checkDims(op, nHeads, headDim);
    checkLength(op, "x", x.length, positions.length * nHeads * headDim);
    this.#check(
      op,
      this.#syms().emoe_rope(
        x,
        BigInt(x.length),
        positions,
        BigInt(positions.length),
        BigInt(nHeads),
        BigInt(headDim),
        BigInt(nDims),
        base,
        mode === "neox" ? 2 : 0,
      ),
    );
  }

  /** SwiGLU: `out[i] = silu(g[i]) · u[i]` with GGML's `silu(x) = x / (1 + e^-x)`; `out` may be `g` or `u`. */
  swiglu(g: Float32Array, u: Float32Array, out: Float32Array): void {
    const op = "swiglu";
    checkLength(op, "u", u.length, g.length);
    checkLength(op, "out", out.length, g.length);
    this.#check(
      op,
      this.#syms().emoe_swiglu(g, BigInt(g.length), u, BigInt(u.length), out, BigInt(out.length)),
    );
  }

  /** Every row of `n` elements of `x` to `softmax(row · scale)`, in place, as GGML's `soft_max_ext` without mask. */
  softmax(x: Float32Array, n: number = x.length, scale = 1): void {
    const op = "softmax";
    checkRows(op, x.length, n);
    this.#check(op, this.#syms().emoe_softmax(x, BigInt(x.length), BigInt(n), scale));
  }

  /**
   * Attention of one query token `q` (`nHead × headDim`) over the first `nKv`
   * positions of a KV cache (`k`, `v`: exactly `nKv × nHeadKv × headDim`
   * elements, position-major, f32 or f16), as llama.cpp's graph without flash
   * attention: per head `softmax(K·q · scale) · V`, head `h` reading KV head
   * `h / (nHead / nHeadKv)`. An f16 cache rounds `q` and the probabilities to
   * f16 as GGML does. Heads are split over `pool` if given.
   */
  attention(
    q: Float32Array,
    k: Float32Array | Float16Array,
    v: Float32Array | Float16Array,
    out: Float32Array,
    shape: { nHead: number; nHeadKv: number; headDim: number; nKv: number; scale: number },
    pool?: ThreadPool,
  ): void {
    const op = "attention";
    const { nHead, nHeadKv, headDim, nKv, scale } = shape;
    checkDims(op, nHead, headDim);
    checkDims(op, nHeadKv, nKv);
    const f16 = k instanceof Float16Array;
    if ((v instanceof Float16Array) !== f16) {
      throw new EdgeMoeError("invalid_argument", op, "k and v caches must be of the same type (both f32 or both f16)");
    }
    checkLength(op, "q", q.length, nHead * headDim);
    checkLength(op, "out", out.length, nHead * headDim);
    checkLength(op, "k", k.length, nKv * nHeadKv * headDim);
    checkLength(op, "v", v.length, nKv * nHeadKv * headDim);
    const kb = new Uint8Array(k.buffer, k.byteOffset, k.byteLength);
    const vb = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    this.#check(
      op,
      this.#syms().emoe_attention(
        pool ? pool.handle(op) : null,
        f16 ? 1 : 0,
        q,
        BigInt(q.length),
        kb,
        BigInt(kb.length),
        vb,
        BigInt(vb.length),
        out,
        BigInt(out.length),
        BigInt(nHead),
        BigInt(nHeadKv),
        BigInt(headDim),
        BigInt(nKv),
        scale,
      ),
    );
  }

  /** XXH64 (seed 0) of `bytes`, as the pack's expert checksums use. */
  checksum64(bytes: Uint8Array): bigint {
    const out = new BigUint64Array(1);
    this.#check("checksum", this.#syms().emoe_checksum64(bytes, BigInt(bytes.length), out));
    return out[0];
  }

  /**
   * Opens `path` for expert reads into a fixed slot arena (see {@linkcode SlotReader}).
   * Close the reader before the library.
   */
  openSlotReader(path: string, opts: SlotReaderOptions): SlotReader {
    return SlotReader.open({ symbols: this.#syms(), check: (op, status) => this.#check(op, status) }, path, opts);
  }

  /** Closes the library (and any pool still open). Idempotent. */
  close(): void {
    for (const p of [...this.#pools]) p.close();
    this.#dl?.close();
    this.#dl = undefined;
  }

  /** Same as `close()`. */
  [Symbol.dispose](): void {
    this.close();
  }

  #syms(): Symbols {
    if (!this.#dl) throw new EdgeMoeError("closed", "native call", "the native library was closed");
    return this.#sym;
  }

  #shape(op: string, wLen: number, xLen: number, yLen: number, rows: number, cols: number): void {
    checkDims(op, rows, cols);
    checkLength(op, "w", wLen, rows * cols);
    checkLength(op, "x", xLen, cols);
    checkLength(op, "y", yLen, rows);
  }

  #lastError(): string {
    return this.#text("last error", (buf, cap, len) => this.#sym.emoe_last_error(buf, cap, len));
  }

  #text(op: string, fn: (buf: Uint8Array, cap: bigint, len: BigUint64Array) => number): string {
    const buf = new Uint8Array(512);
    const len = new BigUint64Array(1);
    if (fn(buf, BigInt(buf.length), len) !== 0) {
      throw new EdgeMoeError("native_error", op, "could not read text from the native library");
    }
    return decoder.decode(buf.subarray(0, Math.min(Number(len[0]), buf.length)));
  }

  #check(op: string, status: number): void {
    const err = errorFromStatus(status, op, status === 0 ? "" : this.#lastError());
    if (err) throw err;
  }
}

let shared: NativeLibrary | undefined;

/** The process-wide library, opened on first use with default options. */
export function nativeLibrary(): NativeLibrary {
  shared ??= NativeLibrary.open();
  return shared;
}
