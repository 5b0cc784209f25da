/**
 * llama.cpp's samplers as a test oracle: a sampler chain built with
 * `llama_sampler_init_*` from the prebuilt `libllama` (found as ./llama.ts
 * finds it), applied with `llama_sampler_apply` to a `llama_token_data_array`.
 *
 * Samplers need no backend, model or log callback, so this opens libllama on
 * its own (its RUNPATH `$ORIGIN` finds libggml) and never calls
 * `openLlama()`: that installs a process-wide log callback owned by the
 * calling test module, and with `deno test --parallel` another module's
 * llama.cpp logging would then call into this one's isolate.
 *
 * ```
 * struct llama_token_data       { int32_t id; float logit; float p; };            // 12 bytes
 * struct llama_token_data_array { llama_token_data * data; size_t size;           // 0, 8
 *                                 int64_t selected; bool sorted; };               // 16, 24 (32 bytes)
 * struct llama_sampler_chain_params { bool no_perf; };                            // by value
 * ```
 *
 * @module
 */
import { EdgeMoeError } from "../../src/errors.ts";
import { DEFAULT_LLAMA_DIR } from "./llama.ts";

const CHAIN_PARAMS = { struct: ["bool"] } as const;

const samplerSymbols = {
  /** struct llama_sampler * llama_sampler_chain_init(struct llama_sampler_chain_params params) */
  llama_sampler_chain_init: { parameters: [CHAIN_PARAMS], result: "pointer" },
  /** void llama_sampler_chain_add(struct llama_sampler * chain, struct llama_sampler * smpl) */
  llama_sampler_chain_add: { parameters: ["pointer", "pointer"], result: "void" },
  /** struct llama_sampler * llama_sampler_init_top_k(int32_t k) */
  llama_sampler_init_top_k: { parameters: ["i32"], result: "pointer" },
  /** struct llama_sampler * llama_sampler_init_top_p(float p, size_t min_keep) */
  llama_sampler_init_top_p: { parameters: ["f32", "usize"], result: "pointer" },
  /** struct llama_sampler * llama_sampler_init_min_p(float p, size_t min_keep) */
  llama_sampler_init_min_p: { parameters: ["f32", "usize"], result: "pointer" },
  /** struct llama_sampler * llama_sampler_init_temp(float t) */
  llama_sampler_init_temp: { parameters: ["f32"], result: "pointer" },
  /** struct llama_sampler * llama_sampler_init_penalties(int32_t n_vocab, int32_t penalty_last_n, float penalty_repeat, float penalty_freq, float penalty_present) */
  llama_sampler_init_penalties: { parameters: ["i32", "i32", "f32", "f32", "f32"], result: "pointer" },
  /** struct llama_sampler * llama_sampler_init_dist(uint32_t seed) */
  llama_sampler_init_dist: { parameters: ["u32"], result: "pointer" },
  /** void llama_sampler_apply(struct llama_sampler * smpl, llama_token_data_array * cur_p) */
  llama_sampler_apply: { parameters: ["pointer", "buffer"], result: "void" },
  /** void llama_sampler_accept(struct llama_sampler * smpl, llama_token token) */
  llama_sampler_accept: { parameters: ["pointer", "i32"], result: "void" },
  /** void llama_sampler_free(struct llama_sampler * smpl) */
  llama_sampler_free: { parameters: ["pointer"], result: "void" },
} as const satisfies Deno.ForeignLibraryInterface;

let lib: Deno.DynamicLibrary<typeof samplerSymbols>["symbols"] | undefined;

function symbols(): Deno.DynamicLibrary<typeof samplerSymbols>["symbols"] {
  if (!lib) {
    const path = `${DEFAULT_LLAMA_DIR}libllama.v0.5.0.so`;
    try {
      lib = Deno.dlopen(path, samplerSymbols).symbols;
    } catch (e) {
      throw new EdgeMoeError(
        "library_not_found",
        "open llama.cpp sampler oracle",
        `dlopen(${path}) failed: ${
          (e as Error).message
        }; run ./dev once to install the pinned @node-llama-cpp/linux-x64`,
        { cause: e },
      );
    }
  }
  return lib;
}

/** One step of a llama.cpp sampler chain. */
export type LlamaStep =
  | { kind: "penalties"; nVocab: number; lastN: number; repeat: number; freq: number; present: number }
  | { kind: "top_k"; k: number }
  | { kind: "top_p"; p: number; minKeep: number }
  | { kind: "min_p"; p: number; minKeep: number }
  | { kind: "temp"; t: number }
  | { kind: "dist"; seed: number };

/** What a chain left: the candidates (in llama.cpp's order) and the selected index (-1 if none). */
export interface LlamaResult {
  ids: Int32Array;
  logits: Float32Array;
  selected: number;
}

/** A llama.cpp sampler chain; `close()` frees it. */
export class LlamaSamplerChain {
  #chain: Deno.PointerValue;

  constructor(steps: LlamaStep[]) {
    const s = symbols();
    this.#chain = s.llama_sampler_chain_init(new Uint8Array([1]));
    for (const st of steps) {
      let smpl: Deno.PointerValue;
      switch (st.kind) {
        case "penalties":
          smpl = s.llama_sampler_init_penalties(st.nVocab, st.lastN, st.repeat, st.freq, st.present);
          break;
        case "top_k":
          smpl = s.llama_sampler_init_top_k(st.k);
          break;
        case "top_p":
          smpl = s.llama_sampler_init_top_p(st.p, BigInt(st.minKeep));
          break;
        case "min_p":
          smpl = s.llama_sampler_init_min_p(st.p, BigInt(st.minKeep));
          break;
        case "temp":
          smpl = s.llama_sampler_init_temp(st.t);
          break;
        case "dist":
          smpl = s.llama_sampler_init_dist(st.seed);
          break;
      }
      s.llama_sampler_chain_add(this.#chain, smpl);
    }
  }

  /** Applies the chain to `logits` (ids = positions, unsorted), as `llama_sampler_sample` does. */
  apply(logits: Float32Array): LlamaResult {
    const n = logits.length;
    const data = new ArrayBuffer(n * 12);
    const dv = new DataView(data);
    for (let i = 0; i < n; i++) {
      dv.setInt32(i * 12, i, true);
      dv.setFloat32(i * 12 + 4, logits[i], true);
      dv.setFloat32(i * 12 + 8, 0, true);
    }
    const arr = new Uint8Array(32);
    const av = new DataView(arr.buffer);
    av.setBigUint64(0, BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(data))), true);
    av.setBigUint64(8, BigInt(n), true);
    av.setBigInt64(16, -1n, true);
    arr[24] = 0;
    symbols().llama_sampler_apply(this.#chain, arr);
    const size = Number(av.getBigUint64(8, true));
    const selected = Number(av.getBigInt64(16, true));
    const view = new Deno.UnsafePointerView(Deno.UnsafePointer.create(av.getBigUint64(0, true))!);
    const ids = new Int32Array(size);
    const out = new Float32Array(size);
    for (let i = 0; i < size; i++) {
      ids[i] = view.getInt32(i * 12);
      out[i] = view.getFloat32(i * 12 + 4);
    }
    return { ids, logits: out, selected };
  }

  /** Tells the chain a token was generated (for the penalties). */
  accept(token: number): void {
    symbols().llama_sampler_accept(this.#chain, token);
  }

  /** Frees the chain (idempotent). */
  close(): void {
    if (this.#chain !== null) symbols().llama_sampler_free(this.#chain);
    this.#chain = null;
  }
}
