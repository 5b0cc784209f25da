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
import { type GgmlType, ggmlTypeByName, type GgmlTypeInfo, tensorBytes } from "../src/gguf/types.ts";

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

/** A GGML type name, e.g. `"q4_0"` (see `GGML_TYPES` in src/gguf/types.ts). */
export type GgmlTypeName = keyof typeof GgmlType;

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
  const b = tensorBytes(t, BigInt(n));
  if (b === undefined) {
    throw new EdgeMoeError(
      "invalid_argument",
      op,
      `${what} = ${n} is not a multiple of the ${t.name} block size ${t.blockElems}`,
    );
  }
  return Number(b);
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
   * quantized once to the type's activation format (Q8_0/Q8_1/Q8_K); float
   * types use `x` as is. Rows are split over `pool` if given.
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
    const op = `matvec ${type}`;
    const t = typeOf(op, type);
    checkDims(op, rows, cols);
    checkLength(op, "w bytes", w.length, rows * bytesOf(op, t, cols, "cols"));
    checkLength(op, "x", x.length, cols);
    checkLength(op, "y", y.length, rows);
    this.#check(
      op,
      this.#syms().emoe_matvec(
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
