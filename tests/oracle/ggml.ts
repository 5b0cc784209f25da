/**
 * llama.cpp's libggml as a test oracle: GGML's own dequantization, reference
 * quantization and CPU dot products, for any GGML type id. Tests compare
 * edgemoe's kernels with these; nothing here is edgemoe code.
 *
 * The libraries come from the npm package `@node-llama-cpp/linux-x64` 3.22.1
 * (llama.cpp release v0.5.0), installed into `.tools/npm` by `./dev`. Struct
 * layouts below are read from that release's `ggml.h` and `ggml-cpu.h`:
 *
 *   struct ggml_type_traits {            // ggml.h
 *     const char *type_name;     //  0
 *     int64_t blck_size;         //  8
 *     int64_t blck_size_interleave; // 16
 *     size_t type_size;          // 24
 *     bool is_quantized;         // 32
 *     ggml_to_float_t to_float;  // 40  void (const void *x, float *y, int64_t k)
 *     ggml_from_float_t from_float_ref; // 48  void (const float *x, void *y, int64_t k)
 *   };
 *   struct ggml_type_traits_cpu {        // ggml-cpu.h
 *     ggml_from_float_t from_float; //  0
 *     ggml_vec_dot_t vec_dot;    //  8  void (int n, float *s, size_t bs, const void *x, size_t bx,
 *                                //          const void *y, size_t by, int nrc)
 *     enum ggml_type vec_dot_type; // 16
 *     int64_t nrows;             // 24
 *   };
 *
 * The CPU backend ships one library per x86-64 micro-architecture
 * (`libggml-cpu-haswell.so`, `…-sapphirerapids.so`, …). Like GGML's own
 * loader (`ggml_backend_load_best`), `Ggml.open()` asks each for its
 * `ggml_backend_score()` and keeps the highest-scoring one this CPU runs.
 *
 * Row loops run in a tiny native shim (`ggml_rows.zig`), compiled with the
 * pinned Zig into the system temp directory on first use: a Deno call through
 * a function pointer costs microseconds, a whole matvec's worth of them
 * would dwarf the kernel being measured.
 *
 * Needs `--allow-ffi --allow-read --allow-write --allow-run --allow-env`.
 *
 * @module
 */

import { findZig } from "../../ffi/build.ts";

/** Directory of the prebuilt llama.cpp libraries (override with `$EDGEMOE_GGML_DIR`). */
export const GGML_DIR: string = Deno.env.get("EDGEMOE_GGML_DIR") ??
  new URL("../../.tools/npm/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/", import.meta.url).pathname;

const baseSymbols = {
  ggml_get_type_traits: { parameters: ["i32"], result: "pointer" },
  ggml_quantize_init: { parameters: ["i32"], result: "void" },
  ggml_quantize_requires_imatrix: { parameters: ["i32"], result: "bool" },
  ggml_quantize_chunk: { parameters: ["i32", "buffer", "buffer", "i64", "i64", "i64", "buffer"], result: "usize" },
} as const satisfies Deno.ForeignLibraryInterface;

const cpuSymbols = {
  ggml_backend_score: { parameters: [], result: "i32" },
  ggml_cpu_init: { parameters: [], result: "void" },
  ggml_get_type_traits_cpu: { parameters: ["i32"], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

const shimSymbols = {
  oracle_vec_dot_rows: {
    parameters: ["pointer", "i32", "buffer", "usize", "usize", "buffer", "buffer"],
    result: "void",
  },
} as const satisfies Deno.ForeignLibraryInterface;

/** Compiles ggml_rows.zig once per content (cached by FNV-1a hash in the temp directory) and opens it. */
function openShim(): Deno.DynamicLibrary<typeof shimSymbols> {
  const src = new URL("./ggml_rows.zig", import.meta.url);
  let h = 0x811c9dc5;
  for (const b of Deno.readFileSync(src)) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  const hash = h.toString(16).padStart(8, "0");
  const dir = `${Deno.env.get("TMPDIR") ?? "/tmp"}/edgemoe-oracle-${hash}`;
  const lib = `${dir}/libggml_rows.so`;
  try {
    Deno.statSync(lib);
  } catch {
    Deno.mkdirSync(dir, { recursive: true });
    const tmp = `${lib}.${Deno.pid}.partial`;
    const out = new Deno.Command(findZig(), {
      args: ["build-lib", "-dynamic", "-O", "ReleaseFast", `-femit-bin=${tmp}`, src.pathname],
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
    }).outputSync();
    if (!out.success) fail(`cannot build ${src.pathname}: ${new TextDecoder().decode(out.stderr)}`);
    Deno.renameSync(tmp, lib);
  }
  return Deno.dlopen(lib, shimSymbols);
}

const toFloatDef = { parameters: ["buffer", "buffer", "i64"], result: "void" } as const;
const fromFloatDef = { parameters: ["buffer", "buffer", "i64"], result: "void" } as const;
const vecDotDef = {
  parameters: ["i32", "buffer", "usize", "buffer", "usize", "buffer", "usize", "i32"],
  result: "void",
} as const;

/** What GGML says about one type (`ggml_type_traits` + `ggml_type_traits_cpu`). */
export interface GgmlTypeInfo {
  /** GGML's name, e.g. `"q4_0"`. */
  name: string;
  /** Elements per block (`blck_size`). */
  blockElems: number;
  /** Bytes per block (`type_size`). */
  blockBytes: number;
  isQuantized: boolean;
  /** The activation type the CPU dot product takes (`vec_dot_type`). */
  vecDotType: number;
}

interface TypeFns {
  info: GgmlTypeInfo;
  toFloat: Deno.UnsafeFnPointer<typeof toFloatDef> | null;
  fromFloat: Deno.UnsafeFnPointer<typeof fromFloatDef> | null;
  fromFloatRef: Deno.UnsafeFnPointer<typeof fromFloatDef> | null;
  vecDot: Deno.UnsafeFnPointer<typeof vecDotDef> | null;
  vecDotRaw: Deno.PointerValue;
}

function fail(msg: string): never {
  throw new Error(`ggml oracle: ${msg}`);
}

/** The opened libggml-base and the best CPU backend library for this machine. */
export class Ggml implements Disposable {
  #base: Deno.DynamicLibrary<typeof baseSymbols>;
  #cpu: Deno.DynamicLibrary<typeof cpuSymbols>;
  #shim: Deno.DynamicLibrary<typeof shimSymbols>;
  #types = new Map<number, TypeFns>();
  #closed = false;
  /** The CPU backend file in use, e.g. `libggml-cpu-sapphirerapids.so`. */
  readonly cpuLibrary: string;

  private constructor(
    base: Deno.DynamicLibrary<typeof baseSymbols>,
    cpu: Deno.DynamicLibrary<typeof cpuSymbols>,
    shim: Deno.DynamicLibrary<typeof shimSymbols>,
    file: string,
  ) {
    this.#base = base;
    this.#cpu = cpu;
    this.#shim = shim;
    this.cpuLibrary = file;
  }

  /** Opens libggml-base and the highest-scoring `libggml-cpu-*.so` of `dir`. */
  static open(dir: string = GGML_DIR): Ggml {
    const basePath = `${dir}/libggml-base.so`;
    let base: Deno.DynamicLibrary<typeof baseSymbols>;
    try {
      base = Deno.dlopen(basePath, baseSymbols);
    } catch (e) {
      fail(`cannot open ${basePath} (run ./dev to install the llama.cpp oracle): ${(e as Error).message}`);
    }
    let best: { lib: Deno.DynamicLibrary<typeof cpuSymbols>; file: string; score: number } | undefined;
    for (const entry of [...Deno.readDirSync(dir)].sort((a, b) => a.name.localeCompare(b.name))) {
      if (!/^libggml-cpu-.*\.so$/.test(entry.name)) continue;
      const lib = Deno.dlopen(`${dir}/${entry.name}`, cpuSymbols);
      const score = lib.symbols.ggml_backend_score();
      if (score > (best?.score ?? 0)) {
        best?.lib.close();
        best = { lib, file: entry.name, score };
      } else lib.close();
    }
    if (!best) {
      base.close();
      fail(`no libggml-cpu-*.so in ${dir} supports this CPU`);
    }
    best.lib.symbols.ggml_cpu_init();
    let shim: Deno.DynamicLibrary<typeof shimSymbols>;
    try {
      shim = openShim();
    } catch (e) {
      best.lib.close();
      base.close();
      throw e;
    }
    return new Ggml(base, best.lib, shim, best.file);
  }

  #fns(type: number): TypeFns {
    if (this.#closed) fail("closed");
    let t = this.#types.get(type);
    if (t) return t;
    const tp = this.#base.symbols.ggml_get_type_traits(type) ?? fail(`no type traits for type ${type}`);
    const tv = new Deno.UnsafePointerView(tp);
    const namePtr = tv.getPointer(0);
    const cp = this.#cpu.symbols.ggml_get_type_traits_cpu(type) ?? fail(`no CPU type traits for type ${type}`);
    const cv = new Deno.UnsafePointerView(cp);
    const blockBytes = Number(tv.getBigUint64(24));
    if (blockBytes === 0) fail(`type ${type} is not a GGML type (type_size 0)`);
    const fn = <D extends Deno.ForeignFunction>(p: Deno.PointerValue, def: D) =>
      p ? new Deno.UnsafeFnPointer(p as Deno.PointerObject<D>, def) : null;
    t = {
      info: {
        name: namePtr ? Deno.UnsafePointerView.getCString(namePtr) : `type${type}`,
        blockElems: Number(tv.getBigInt64(8)),
        blockBytes,
        isQuantized: tv.getUint8(32) !== 0,
        vecDotType: cv.getInt32(16),
      },
      toFloat: fn(tv.getPointer(40), toFloatDef),
      fromFloat: fn(cv.getPointer(0), fromFloatDef),
      fromFloatRef: fn(tv.getPointer(48), fromFloatDef),
      vecDot: fn(cv.getPointer(8), vecDotDef),
      vecDotRaw: cv.getPointer(8),
    };
    this.#types.set(type, t);
    return t;
  }

  /** GGML's description of `type`. */
  info(type: number): GgmlTypeInfo {
    return { ...this.#fns(type).info };
  }

  /** Bytes of `n` elements of `type`; `n` must be a multiple of its block. */
  bytes(type: number, n: number): number {
    const { blockElems, blockBytes, name } = this.#fns(type).info;
    if (n % blockElems !== 0) fail(`${n} elements is not a whole number of ${name} blocks of ${blockElems}`);
    return (n / blockElems) * blockBytes;
  }

  /** `to_float`: `n` elements of `type` in `src` to f32. */
  dequantize(type: number, src: Uint8Array, n: number): Float32Array {
    const f = this.#fns(type);
    if (src.length !== this.bytes(type, n)) fail(`${f.info.name}: ${src.length} bytes for ${n} elements`);
    const toFloat = f.toFloat ?? fail(`${f.info.name} has no to_float`);
    const out = new Float32Array(n);
    toFloat.call(src, out, BigInt(n));
    return out;
  }

  /**
   * `ggml_quantize_chunk`: GGML's reference quantizer (the one llama-quantize
   * uses), `rows` rows of `nPerRow` f32 each, optionally with an importance matrix.
   */
  quantize(type: number, src: Float32Array, nPerRow: number, rows = 1, imatrix?: Float32Array): Uint8Array {
    const f = this.#fns(type);
    if (src.length !== nPerRow * rows) fail(`${f.info.name}: ${src.length} floats for ${rows}x${nPerRow}`);
    if (type === 9 || type === 15) fail(`ggml_quantize_chunk aborts on ${f.info.name}; use quantizeRef`);
    if (!imatrix && this.#base.symbols.ggml_quantize_requires_imatrix(type)) {
      fail(`${f.info.name} needs an importance matrix`);
    }
    const out = new Uint8Array(this.bytes(type, nPerRow) * rows);
    this.#base.symbols.ggml_quantize_init(type);
    const written = this.#base.symbols.ggml_quantize_chunk(
      type,
      src,
      out,
      0n,
      BigInt(rows),
      BigInt(nPerRow),
      imatrix ?? null,
    );
    if (Number(written) !== out.length) fail(`${f.info.name}: quantize wrote ${written} bytes, expected ${out.length}`);
    return out;
  }

  /**
   * `from_float_ref`: GGML's plain reference quantizer of one row. The only
   * reference for the activation types Q8_1 and Q8_K, which
   * `ggml_quantize_chunk` refuses.
   */
  quantizeRef(type: number, src: Float32Array): Uint8Array {
    const f = this.#fns(type);
    const ref = f.fromFloatRef ?? fail(`${f.info.name} has no from_float_ref`);
    const out = new Uint8Array(this.bytes(type, src.length));
    ref.call(src, out, BigInt(src.length));
    return out;
  }

  /** The CPU backend's `from_float` for `type` (how activations are quantized at run time). */
  fromFloat(type: number, src: Float32Array): Uint8Array {
    const f = this.#fns(type);
    const fromFloat = f.fromFloat ?? fail(`${f.info.name} has no CPU from_float`);
    const out = new Uint8Array(this.bytes(type, src.length));
    fromFloat.call(src, out, BigInt(src.length));
    return out;
  }

  /**
   * The CPU backend's `vec_dot` for weight `type`: one row `w` (n elements of
   * `type`) against `a`, n elements already in the type's `vecDotType`.
   */
  vecDot(type: number, n: number, w: Uint8Array, a: Uint8Array): number {
    const f = this.#fns(type);
    const vecDot = f.vecDot ?? fail(`${f.info.name} has no CPU vec_dot`);
    if (w.length !== this.bytes(type, n)) fail(`${f.info.name}: w has ${w.length} bytes for ${n} elements`);
    if (a.length !== this.bytes(f.info.vecDotType, n)) fail(`${f.info.name}: activation has ${a.length} bytes`);
    const out = new Float32Array(1);
    vecDot.call(n, out, 0n, w, 0n, a, 0n, 1);
    return out[0];
  }

  /**
   * `y = W·x` the way GGML's CPU backend computes a matvec: `x` converted once
   * with the activation type's `from_float`, then `vec_dot` per row.
   */
  matvec(type: number, w: Uint8Array, x: Float32Array, rows: number, cols: number): Float32Array {
    const rowBytes = this.bytes(type, cols);
    if (w.length !== rowBytes * rows) fail(`w has ${w.length} bytes, expected ${rows} rows of ${rowBytes}`);
    const f = this.#fns(type);
    if (!f.vecDotRaw) fail(`${f.info.name} has no CPU vec_dot`);
    const a = this.fromFloat(f.info.vecDotType, x);
    const y = new Float32Array(rows);
    this.#shim.symbols.oracle_vec_dot_rows(f.vecDotRaw, cols, w, BigInt(rowBytes), BigInt(rows), a, y);
    return y;
  }

  /** Closes the libraries. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#types.clear();
    this.#shim.close();
    this.#cpu.close();
    this.#base.close();
  }

  /** Same as `close()`. */
  [Symbol.dispose](): void {
    this.close();
  }
}
