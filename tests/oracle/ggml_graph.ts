/**
 * llama.cpp's libggml as an oracle for the transformer's small ops: each
 * method builds a one-op GGML graph (or, for attention, the few ops of
 * llama.cpp's graph without flash attention), computes it on the CPU backend
 * with one thread and returns the result. Nothing here is edgemoe code.
 *
 * Signatures from the release's `ggml.h` / `ggml-cpu.h` (node-llama-cpp
 * 3.22.1's llama.cpp source bundle):
 *
 *   struct ggml_init_params { size_t mem_size; void * mem_buffer; bool no_alloc; };  // 24 bytes
 *   ggml_context * ggml_init(ggml_init_params);            void ggml_free(ggml_context *);
 *   ggml_tensor * ggml_new_tensor_3d(ctx, enum ggml_type, int64_t ne0, ne1, ne2);
 *   void * ggml_get_data(const ggml_tensor *);
 *   ggml_tensor * ggml_rms_norm(ctx, a, float eps);        ggml_mul(ctx, a, b);   // b broadcast
 *   ggml_tensor * ggml_rope_ext(ctx, a, b /* i32 positions *\/, c /* freq factors *\/, int n_dims, int mode,
 *                               int n_ctx_orig, float freq_base, freq_scale, ext_factor, attn_factor,
 *                               beta_fast, beta_slow);
 *   ggml_tensor * ggml_swiglu_split(ctx, a /* gate *\/, b /* up *\/);
 *   ggml_tensor * ggml_soft_max_ext(ctx, a, mask, float scale, float max_bias);
 *   ggml_tensor * ggml_mul_mat(ctx, a, b);                 // a: [k, m, h_a], b: [k, n, h_b], h_b % h_a == 0
 *   ggml_cgraph * ggml_new_graph(ctx);  void ggml_build_forward_expand(ggml_cgraph *, ggml_tensor *);
 *   enum ggml_status ggml_graph_compute_with_ctx(ctx, ggml_cgraph *, int n_threads);   // ggml-cpu.h
 *
 * @module
 */
import { Ggml, GGML_DIR } from "./ggml.ts";

const T = "pointer" as const;
const baseSymbols = {
  ggml_init: { parameters: [{ struct: ["usize", "pointer", "u8"] }], result: T },
  ggml_free: { parameters: [T], result: "void" },
  ggml_new_tensor_3d: { parameters: [T, "i32", "i64", "i64", "i64"], result: T },
  ggml_get_data: { parameters: [T], result: T },
  ggml_rms_norm: { parameters: [T, T, "f32"], result: T },
  ggml_mul: { parameters: [T, T, T], result: T },
  ggml_rope_ext: {
    parameters: [T, T, T, T, "i32", "i32", "i32", "f32", "f32", "f32", "f32", "f32", "f32"],
    result: T,
  },
  ggml_swiglu_split: { parameters: [T, T, T], result: T },
  ggml_soft_max_ext: { parameters: [T, T, T, "f32", "f32"], result: T },
  ggml_mul_mat: { parameters: [T, T, T], result: T },
  ggml_new_graph: { parameters: [T], result: T },
  ggml_build_forward_expand: { parameters: [T, T], result: "void" },
} as const satisfies Deno.ForeignLibraryInterface;

const cpuSymbols = {
  ggml_graph_compute_with_ctx: { parameters: [T, T, "i32"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

const GGML_TYPE = { f32: 0, f16: 1, i32: 26 } as const;
type Ptr = Deno.PointerObject;
type BaseSymbols = Deno.DynamicLibrary<typeof baseSymbols>["symbols"];

/** GGML graphs of single ops on the CPU backend (one thread). */
export class GgmlGraph implements Disposable {
  #ggml: Ggml;
  #base: Deno.DynamicLibrary<typeof baseSymbols>;
  #cpu: Deno.DynamicLibrary<typeof cpuSymbols>;

  private constructor(
    ggml: Ggml,
    base: Deno.DynamicLibrary<typeof baseSymbols>,
    cpu: Deno.DynamicLibrary<typeof cpuSymbols>,
  ) {
    this.#ggml = ggml;
    this.#base = base;
    this.#cpu = cpu;
  }

  /** Opens libggml-base and the CPU backend `Ggml.open` picks for this machine. */
  static open(dir: string = GGML_DIR): GgmlGraph {
    const ggml = Ggml.open(dir);
    const base = Deno.dlopen(`${dir}/libggml-base.so`, baseSymbols);
    const cpu = Deno.dlopen(`${dir}/${ggml.cpuLibrary}`, cpuSymbols);
    return new GgmlGraph(ggml, base, cpu);
  }

  /** Runs `build` in a fresh 64 MiB context, computes its result tensor and copies out `n` f32. */
  #run(n: number, build: (ctx: Ptr, s: BaseSymbols) => Ptr): Float32Array {
    const s = this.#base.symbols;
    const params = new Uint8Array(24);
    new DataView(params.buffer).setBigUint64(0, 64n << 20n, true);
    const ctx = s.ggml_init(params);
    if (!ctx) throw new Error("ggml_init failed");
    try {
      const out = build(ctx, s);
      const graph = s.ggml_new_graph(ctx)!;
      s.ggml_build_forward_expand(graph, out);
      const status = this.#cpu.symbols.ggml_graph_compute_with_ctx(ctx, graph, 1);
      if (status !== 0) throw new Error(`ggml_graph_compute_with_ctx returned ${status}`);
      return new Float32Array(Deno.UnsafePointerView.getArrayBuffer(s.ggml_get_data(out)!, n * 4).slice(0));
    } finally {
      s.ggml_free(ctx);
    }
  }

  /** A tensor of `ne` (ne0 first) filled with `data` (f32, f16 or i32 as the array is). */
  #tensor(ctx: Ptr, data: Float32Array | Float16Array | Int32Array, ne: [number, number, number]): Ptr {
    const type = data instanceof Float32Array
      ? GGML_TYPE.f32
      : data instanceof Float16Array
      ? GGML_TYPE.f16
      : GGML_TYPE.i32;
    const t = this.#base.symbols.ggml_new_tensor_3d(ctx, type, BigInt(ne[0]), BigInt(ne[1]), BigInt(ne[2]))!;
    const dst = Deno.UnsafePointerView.getArrayBuffer(this.#base.symbols.ggml_get_data(t)!, data.byteLength);
    new Uint8Array(dst).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    return t;
  }

  /** `ggml_mul(ggml_rms_norm(x, eps), w)` over rows of `n`. */
  rmsNorm(x: Float32Array, w: Float32Array, eps: number, n: number): Float32Array {
    return this.#run(x.length, (ctx, s) => {
      const a = this.#tensor(ctx, x, [n, x.length / n, 1]);
      return s.ggml_mul(ctx, s.ggml_rms_norm(ctx, a, eps), this.#tensor(ctx, w, [n, 1, 1]))!;
    });
  }

  /** `ggml_rope_ext` of `x` (`pos.length` tokens × `nHeads` × `headDim`) as llama.cpp calls it (no YaRN). */
  rope(
    x: Float32Array,
    pos: Int32Array,
    nHeads: number,
    headDim: number,
    nDims: number,
    base: number,
    neox: boolean,
  ): Float32Array {
    return this.#run(x.length, (ctx, s) => {
      const a = this.#tensor(ctx, x, [headDim, nHeads, pos.length]);
      const p = this.#tensor(ctx, pos, [pos.length, 1, 1]);
      return s.ggml_rope_ext(ctx, a, p, null, nDims, neox ? 2 : 0, 4096, base, 1, 0, 1, 32, 1)!;
    });
  }

  /** `ggml_swiglu_split(g, u)` = silu(g) · u. */
  swiglu(g: Float32Array, u: Float32Array): Float32Array {
    return this.#run(g.length, (ctx, s) => {
      return s.ggml_swiglu_split(ctx, this.#tensor(ctx, g, [g.length, 1, 1]), this.#tensor(ctx, u, [u.length, 1, 1]))!;
    });
  }

  /** `ggml_soft_max_ext(x, no mask, scale, 0)` over rows of `n`. */
  softmax(x: Float32Array, n: number, scale: number): Float32Array {
    return this.#run(
      x.length,
      (ctx, s) => s.ggml_soft_max_ext(ctx, this.#tensor(ctx, x, [n, x.length / n, 1]), null, scale, 0)!,
    );
  }

  /**
   * One query token over a position-major cache (`nKv × nHeadKv × headDim`,
   * f32 or f16), as llama.cpp's graph without flash attention: kq =
   * mul_mat(K, q) per KV head (query heads broadcast), soft_max_ext(kq,
   * scale), then mul_mat(Vᵀ, kq) with V stored transposed as llama.cpp does.
   */
  attention(
    q: Float32Array,
    k: Float32Array | Float16Array,
    v: Float32Array | Float16Array,
    shape: { nHead: number; nHeadKv: number; headDim: number; nKv: number; scale: number },
  ): Float32Array {
    const { nHead, nHeadKv, headDim: hd, nKv, scale } = shape;
    const make = (n: number) => (k instanceof Float16Array ? new Float16Array(n) : new Float32Array(n));
    // K as [hd, nKv, nHeadKv]; V transposed as [nKv, hd, nHeadKv].
    const kk = make(k.length), vt = make(v.length);
    for (let p = 0; p < nKv; p++) {
      for (let g = 0; g < nHeadKv; g++) {
        for (let i = 0; i < hd; i++) {
          const src = (p * nHeadKv + g) * hd + i;
          kk[(g * nKv + p) * hd + i] = k[src];
          vt[(g * hd + i) * nKv + p] = v[src];
        }
      }
    }
    return this.#run(nHead * hd, (ctx, s) => {
      const kt = this.#tensor(ctx, kk, [hd, nKv, nHeadKv]);
      const qt = this.#tensor(ctx, q, [hd, 1, nHead]);
      const kq = s.ggml_soft_max_ext(ctx, s.ggml_mul_mat(ctx, kt, qt), null, scale, 0);
      return s.ggml_mul_mat(ctx, this.#tensor(ctx, vt, [nKv, hd, nHeadKv]), kq)!;
    });
  }

  close(): void {
    this.#cpu.close();
    this.#base.close();
    this.#ggml.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
