/**
 * llama.cpp as a test oracle: the prebuilt `libllama` of the npm package
 * `@node-llama-cpp/linux-x64` (pinned in tools/toolchain/package.json, installed
 * by `./dev` into `.tools/npm/`), called through `Deno.dlopen`. Tests use it to
 * compute the logits and tokenizations our engine must reproduce; it is never
 * part of the engine.
 *
 * Loading order (llama.cpp's CPU backends are plugins): `libggml-base.so`
 * (logging), `libggml.v0.5.0.so` and `ggml_backend_load_all_from_path(dir)`,
 * then `libllama.v0.5.0.so`. The libraries stay loaded for the life of the
 * process; models and contexts are freed by {@linkcode LlamaModel.close}.
 *
 * `llama_model_params` and `llama_context_params` are passed by value. They
 * are declared here as opaque 1024-byte structs (larger than both, so the
 * callee reads and writes only the real prefix), filled from llama.cpp's own
 * defaults, and patched at the byte offsets below, which follow `llama.h` of
 * the same release (llama.cpp tag v0.5.0, bundled in node-llama-cpp@3.22.1 as
 * `llama/gitRelease.bundle`) on LP64:
 *
 * ```
 * struct llama_model_params {   // 80 bytes
 *    0 devices*  8 tensor_buft_overrides*  16 n_gpu_layers i32  20 split_mode  24 load_mode  28 lazy_mode
 *   32 main_gpu i32  40 tensor_split*  48 progress_callback  56 progress_callback_user_data  64 kv_overrides*
 *   72 vocab_only  73 check_tensors  74 use_extra_bufts  75 no_host  76 no_alloc  77 load_mtp   (bool each)
 * }
 * struct llama_context_params { // 160 bytes
 *    0 n_ctx  4 n_batch  8 n_ubatch  12 n_seq_max  16 n_rs_seq  20 n_outputs_max  24 n_outputs_max_per_seq (u32)
 *   28 n_threads  32 n_threads_batch (i32)  36 ctx_type  40 rope_scaling_type  44 pooling_type  48 attention_type
 *   52 flash_attn_type (-1 auto, 0 off, 1 on)  56..84 rope/yarn floats, yarn_orig_ctx, defrag_thold
 *   88 cb_eval  96 cb_eval_user_data  104 type_k  108 type_v (enum ggml_type, 0 = F32)  112 abort_callback
 *   120 abort_callback_data  128 embeddings  129 offload_kqv  130 no_perf  131 op_offload  132 swa_full
 *   133 kv_unified (bool each)  136 samplers*  144 n_samplers  152 ctx_other*
 * }
 * struct llama_model_quantize_params { // 64 bytes, by pointer
 *    0 nthread i32  4 ftype (enum llama_ftype)  8 output_tensor_type  12 token_embedding_type (enum ggml_type)
 *   16 allow_requantize  17 quantize_output_tensor  18 only_copy  19 pure  20 keep_split  21 dry_run (bool each)
 *   24 imatrix*  32 kv_overrides*  40 tt_overrides*  48 prune_layers*  56 max_buf_size (size_t)
 * }
 * struct llama_batch {          // 56 bytes, by value
 *    0 n_tokens i32  8 token*  16 embd*  24 pos*  32 n_seq_id*  40 seq_id**  48 logits (int8_t*)
 * }
 * ```
 *
 * tests/oracle_test.ts checks these offsets against the defaults llama.cpp
 * writes and against the values it reads back (`llama_n_ctx`, …, its log).
 *
 * @module
 */
import { EdgeMoeError } from "../../src/errors.ts";
import { argmaxOf } from "./reference.ts";

/** Offsets into `llama_model_params` (see the module comment). */
export const MODEL_PARAMS = { n_gpu_layers: 16, vocab_only: 72, use_extra_bufts: 74, size: 80 } as const;

/** Offsets into `llama_context_params` (see the module comment). */
export const CONTEXT_PARAMS = {
  n_ctx: 0,
  n_batch: 4,
  n_ubatch: 8,
  n_seq_max: 12,
  n_threads: 28,
  n_threads_batch: 32,
  flash_attn_type: 52,
  rope_freq_base: 56,
  yarn_ext_factor: 64,
  type_k: 104,
  type_v: 108,
  embeddings: 128,
  offload_kqv: 129,
  no_perf: 130,
  kv_unified: 133,
  size: 160,
} as const;

/** Offsets into `llama_model_quantize_params` (see the module comment). */
export const QUANTIZE_PARAMS = { nthread: 0, ftype: 4, size: 64 } as const;

const OPAQUE_PARAMS = { struct: new Array<"u64">(128).fill("u64") } as const;
const BATCH = { struct: ["i32", "pointer", "pointer", "pointer", "pointer", "pointer", "pointer"] } as const;

const baseSymbols = {
  /** void ggml_log_set(ggml_log_callback cb, void * user_data) */
  ggml_log_set: { parameters: ["function", "pointer"], result: "void" },
} as const satisfies Deno.ForeignLibraryInterface;

const ggmlSymbols = {
  /** void ggml_backend_load_all_from_path(const char * dir) */
  ggml_backend_load_all_from_path: { parameters: ["buffer"], result: "void" },
} as const satisfies Deno.ForeignLibraryInterface;

const llamaSymbols = {
  /** void llama_log_set(ggml_log_callback cb, void * user_data) */
  llama_log_set: { parameters: ["function", "pointer"], result: "void" },
  /** void llama_backend_init(void) */
  llama_backend_init: { parameters: [], result: "void" },
  /** struct llama_model_params llama_model_default_params(void) */
  llama_model_default_params: { parameters: [], result: OPAQUE_PARAMS },
  /** struct llama_context_params llama_context_default_params(void) */
  llama_context_default_params: { parameters: [], result: OPAQUE_PARAMS },
  /** struct llama_model_quantize_params llama_model_quantize_default_params(void) */
  llama_model_quantize_default_params: { parameters: [], result: OPAQUE_PARAMS },
  /** uint32_t llama_model_quantize(const char * fname_inp, const char * fname_out, const llama_model_quantize_params * params) */
  llama_model_quantize: { parameters: ["buffer", "buffer", "buffer"], result: "u32" },
  /** struct llama_model * llama_model_load_from_file(const char * path, struct llama_model_params params) */
  llama_model_load_from_file: { parameters: ["buffer", OPAQUE_PARAMS], result: "pointer" },
  /** void llama_model_free(struct llama_model * model) */
  llama_model_free: { parameters: ["pointer"], result: "void" },
  /** struct llama_context * llama_init_from_model(struct llama_model * model, struct llama_context_params params) */
  llama_init_from_model: { parameters: ["pointer", OPAQUE_PARAMS], result: "pointer" },
  /** void llama_free(struct llama_context * ctx) */
  llama_free: { parameters: ["pointer"], result: "void" },
  /** uint32_t llama_n_ctx(const struct llama_context * ctx) */
  llama_n_ctx: { parameters: ["pointer"], result: "u32" },
  /** uint32_t llama_n_batch(const struct llama_context * ctx) */
  llama_n_batch: { parameters: ["pointer"], result: "u32" },
  /** uint32_t llama_n_ubatch(const struct llama_context * ctx) */
  llama_n_ubatch: { parameters: ["pointer"], result: "u32" },
  /** uint32_t llama_n_seq_max(const struct llama_context * ctx) */
  llama_n_seq_max: { parameters: ["pointer"], result: "u32" },
  /** int32_t llama_n_threads(struct llama_context * ctx) */
  llama_n_threads: { parameters: ["pointer"], result: "i32" },
  /** int32_t llama_n_threads_batch(struct llama_context * ctx) */
  llama_n_threads_batch: { parameters: ["pointer"], result: "i32" },
  /** const struct llama_vocab * llama_model_get_vocab(const struct llama_model * model) */
  llama_model_get_vocab: { parameters: ["pointer"], result: "pointer" },
  /** int32_t llama_vocab_n_tokens(const struct llama_vocab * vocab) */
  llama_vocab_n_tokens: { parameters: ["pointer"], result: "i32" },
  /** enum llama_vocab_type llama_vocab_type(const struct llama_vocab * vocab) */
  llama_vocab_type: { parameters: ["pointer"], result: "i32" },
  /** llama_token llama_vocab_bos(const struct llama_vocab * vocab) */
  llama_vocab_bos: { parameters: ["pointer"], result: "i32" },
  /** llama_token llama_vocab_eos(const struct llama_vocab * vocab) */
  llama_vocab_eos: { parameters: ["pointer"], result: "i32" },
  /** bool llama_vocab_get_add_bos(const struct llama_vocab * vocab) */
  llama_vocab_get_add_bos: { parameters: ["pointer"], result: "bool" },
  /** int32_t llama_model_n_embd(const struct llama_model * model) */
  llama_model_n_embd: { parameters: ["pointer"], result: "i32" },
  /** int32_t llama_model_n_layer(const struct llama_model * model) */
  llama_model_n_layer: { parameters: ["pointer"], result: "i32" },
  /** int32_t llama_model_n_head(const struct llama_model * model) */
  llama_model_n_head: { parameters: ["pointer"], result: "i32" },
  /** int32_t llama_model_n_head_kv(const struct llama_model * model) */
  llama_model_n_head_kv: { parameters: ["pointer"], result: "i32" },
  /** int32_t llama_model_meta_val_str(const struct llama_model * model, const char * key, char * buf, size_t buf_size) */
  llama_model_meta_val_str: { parameters: ["pointer", "buffer", "buffer", "usize"], result: "i32" },
  /** int32_t llama_model_desc(const struct llama_model * model, char * buf, size_t buf_size) */
  llama_model_desc: { parameters: ["pointer", "buffer", "usize"], result: "i32" },
  /** int32_t llama_tokenize(const struct llama_vocab * vocab, const char * text, int32_t text_len, llama_token * tokens, int32_t n_tokens_max, bool add_special, bool parse_special) */
  llama_tokenize: { parameters: ["pointer", "buffer", "i32", "buffer", "i32", "bool", "bool"], result: "i32" },
  /** int32_t llama_detokenize(const struct llama_vocab * vocab, const llama_token * tokens, int32_t n_tokens, char * text, int32_t text_len_max, bool remove_special, bool unparse_special) */
  llama_detokenize: { parameters: ["pointer", "buffer", "i32", "buffer", "i32", "bool", "bool"], result: "i32" },
  /** int32_t llama_token_to_piece(const struct llama_vocab * vocab, llama_token token, char * buf, int32_t length, int32_t lstrip, bool special) */
  llama_token_to_piece: { parameters: ["pointer", "i32", "buffer", "i32", "i32", "bool"], result: "i32" },
  /** llama_memory_t llama_get_memory(const struct llama_context * ctx) */
  llama_get_memory: { parameters: ["pointer"], result: "pointer" },
  /** void llama_memory_clear(llama_memory_t mem, bool data) */
  llama_memory_clear: { parameters: ["pointer", "bool"], result: "void" },
  /** int32_t llama_decode(struct llama_context * ctx, struct llama_batch batch) */
  llama_decode: { parameters: ["pointer", BATCH], result: "i32" },
  /** float * llama_get_logits_ith(struct llama_context * ctx, int32_t i) */
  llama_get_logits_ith: { parameters: ["pointer", "i32"], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

type LlamaSymbols = Deno.DynamicLibrary<typeof llamaSymbols>["symbols"];

/** Where the prebuilt libraries are by default: `.tools/npm/…` of this checkout. */
export const DEFAULT_LLAMA_DIR = new URL(
  "../../.tools/npm/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/",
  import.meta.url,
).pathname;

const LOG_LINES_MAX = 2000;
const logLines: string[] = [];
let logTotal = 0;
let logPartial = "";

function onLog(_level: number, text: Deno.PointerValue): void {
  if (text === null) return;
  logPartial += Deno.UnsafePointerView.getCString(text);
  const parts = logPartial.split("\n");
  logPartial = parts.pop() ?? "";
  logLines.push(...parts);
  logTotal += parts.length;
  if (logLines.length > LOG_LINES_MAX) logLines.splice(0, logLines.length - LOG_LINES_MAX);
}

/** How many lines llama.cpp has logged so far: a mark for {@linkcode llamaLog}. */
export function llamaLogMark(): number {
  return logTotal;
}

/**
 * The lines llama.cpp and ggml logged during this module's calls (load, context creation, decode,
 * quantize) since `mark` (default: all kept), oldest first; the last 2000 lines are kept. Outside
 * those calls they log to stderr.
 */
export function llamaLog(mark = 0): string[] {
  return logLines.slice(logLines.length - Math.min(logTotal - mark, logLines.length));
}

let loaded: { llama: LlamaSymbols; dir: string } | undefined;
/** The log callback; installed only while {@linkcode logged} runs. */
let logCallback: Deno.UnsafeCallback<{ parameters: ["i32", "pointer", "pointer"]; result: "void" }> | undefined;

function cString(s: string): Uint8Array<ArrayBuffer> {
  const bytes = new TextEncoder().encode(s);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

function openLib<S extends Deno.ForeignLibraryInterface>(path: string, symbols: S): Deno.DynamicLibrary<S> {
  try {
    return Deno.dlopen(path, symbols);
  } catch (e) {
    throw new EdgeMoeError(
      "library_not_found",
      "open llama.cpp oracle",
      `dlopen(${path}) failed: ${(e as Error).message}; run ./dev once to install the pinned @node-llama-cpp/linux-x64`,
      { cause: e },
    );
  }
}

/**
 * Opens llama.cpp's libraries from `dir` (once per process; later calls must
 * name the same directory) and routes its logging into {@linkcode llamaLog}.
 *
 * @throws {EdgeMoeError} `permission_denied` without --allow-ffi, `library_not_found` when a library is missing.
 */
export function openLlama(dir: string = DEFAULT_LLAMA_DIR): LlamaSymbols {
  const d = dir.endsWith("/") ? dir : `${dir}/`;
  if (loaded) {
    if (loaded.dir !== d) {
      throw new EdgeMoeError(
        "invalid_argument",
        "open llama.cpp oracle",
        `already loaded from ${loaded.dir}, not ${d}`,
      );
    }
    return loaded.llama;
  }
  if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") {
    throw new EdgeMoeError("permission_denied", "open llama.cpp oracle", "the llama.cpp oracle needs --allow-ffi");
  }
  logCallback = new Deno.UnsafeCallback({ parameters: ["i32", "pointer", "pointer"], result: "void" }, onLog);
  const base = openLib(`${d}libggml-base.so`, baseSymbols);
  const ggml = openLib(`${d}libggml.v0.5.0.so`, ggmlSymbols);
  base.symbols.ggml_log_set(logCallback.pointer, null);
  try {
    ggml.symbols.ggml_backend_load_all_from_path(cString(d));
  } finally {
    base.symbols.ggml_log_set(null, null);
  }
  const llama = openLib(`${d}libllama.v0.5.0.so`, llamaSymbols).symbols;
  loaded = { llama, dir: d };
  logged(() => llama.llama_backend_init());
  return llama;
}

/**
 * Runs `fn` with llama.cpp's and ggml's logging routed into {@linkcode llamaLog}, then back to their
 * default (stderr). The routing is process-wide and the callback belongs to this isolate, so it must
 * not outlive the call: Deno runs test files in parallel isolates of one process, and ggml logging
 * into the callback of an isolate that has ended crashes the process.
 */
function logged<T>(fn: () => T): T {
  const l = loaded!.llama;
  l.llama_log_set(logCallback!.pointer, null);
  try {
    return fn();
  } finally {
    l.llama_log_set(null, null);
  }
}

/**
 * Which llama.cpp this is, e.g. `"llama.cpp v0.5.0 (@node-llama-cpp/linux-x64 3.22.1)"`, from the npm
 * package's own metadata.
 */
export function llamaVersion(dir: string = DEFAULT_LLAMA_DIR): string {
  const d = dir.endsWith("/") ? dir : `${dir}/`;
  try {
    const build = JSON.parse(Deno.readTextFileSync(`${d}_nlcBuildMetadata.json`));
    const pkg = JSON.parse(Deno.readTextFileSync(`${d}../../package.json`));
    return `llama.cpp ${build.buildOptions.llamaCpp.release} (${pkg.name} ${pkg.version})`;
  } catch (e) {
    throw new EdgeMoeError("library_not_found", "llama.cpp version", `cannot read the package metadata in ${d}`, {
      cause: e,
    });
  }
}

/** The default `llama_model_params` / `llama_context_params` / `llama_model_quantize_params` bytes, as llama.cpp fills them. */
export function defaultParams(dir?: string): { model: Uint8Array; context: Uint8Array; quantize: Uint8Array } {
  const llama = openLlama(dir);
  return {
    model: llama.llama_model_default_params(),
    context: llama.llama_context_default_params(),
    quantize: llama.llama_model_quantize_default_params(),
  };
}

/** `enum llama_ftype` values used by the fixtures. */
export const LLAMA_FTYPE = { MOSTLY_Q8_0: 7, MOSTLY_Q4_K_S: 14, MOSTLY_Q4_K_M: 15, MOSTLY_Q6_K: 18 } as const;

/**
 * Quantizes the GGUF `input` to `output` with llama.cpp's own quantizer (what `llama-quantize` runs),
 * with llama.cpp's default choices per tensor for `ftype` (e.g. Q4_K_M mixes Q4_K and Q6_K). Writes
 * `output.partial`, then renames it, so a failure leaves no file at `output`.
 *
 * @throws {EdgeMoeError} `io` when `input` cannot be read, `corrupt_data` when llama.cpp fails.
 */
export function quantizeModel(input: string, output: string, ftype: number, threads = 1): void {
  const op = `quantize ${input} to ${output}`;
  try {
    if (!Deno.statSync(input).isFile) throw new Error("not a regular file");
  } catch (e) {
    throw new EdgeMoeError("io", op, `cannot read the input: ${(e as Error).message}`, { cause: e });
  }
  const llama = openLlama();
  const params = llama.llama_model_quantize_default_params();
  const v = new DataView(params.buffer, params.byteOffset, params.byteLength);
  v.setInt32(QUANTIZE_PARAMS.nthread, threads, true);
  v.setInt32(QUANTIZE_PARAMS.ftype, ftype, true);
  const partial = `${output}.partial`;
  const mark = llamaLogMark();
  const rc = logged(() => llama.llama_model_quantize(cString(input), cString(partial), params));
  if (rc !== 0) {
    try {
      Deno.removeSync(partial);
    } catch { /* llama.cpp may have failed before creating it */ }
    throw new EdgeMoeError("corrupt_data", op, `llama_model_quantize returned ${rc}: ${errorLines(mark)}`);
  }
  Deno.renameSync(partial, output);
}

/** How to load a model and create its context. */
export interface LlamaModelOptions {
  /** Threads for single-token and batch decoding (default 1; the machines running tests have 2 cores). */
  threads?: number;
  /**
   * Context length in tokens (default 256), rounded up to a multiple of 256 as llama.cpp does. Also the
   * batch size: one `evaluate` is one `llama_decode`.
   */
  nCtx?: number;
  /** KV cache type, a `ggml_type` id (default 0 = F32). */
  kvType?: number;
  /** Flash attention: -1 auto, 0 off (default), 1 on. */
  flashAttn?: -1 | 0 | 1;
  /** Where the libraries are (default {@linkcode DEFAULT_LLAMA_DIR}). */
  dir?: string;
  /**
   * Load only the vocabulary (a GGUF holding only tokenizer metadata works too): tokenize, detokenize,
   * piece and meta work; there is no context, so evaluate and greedy are `unsupported`.
   */
  vocabOnly?: boolean;
}

/** `llama_tokenize`'s flags. */
export interface TokenizeOptions {
  /** Add BOS/EOS as the model's metadata asks (default true). */
  addSpecial?: boolean;
  /** Turn special-token text like `<|im_start|>` into its id (default true). */
  parseSpecial?: boolean;
}

/** `llama_detokenize`'s flags. */
export interface DetokenizeOptions {
  /** Drop a leading BOS / trailing EOS if the model adds them (default false). */
  removeSpecial?: boolean;
  /** Render special tokens as their text (default true). */
  unparseSpecial?: boolean;
}

/** A GGUF model loaded by llama.cpp, with one context (one sequence) unless loaded vocab-only. */
export class LlamaModel {
  #llama: LlamaSymbols;
  #model: Deno.PointerObject | null;
  #ctx: Deno.PointerObject | null;
  #vocab: Deno.PointerObject;
  /** The file it was loaded from. */
  readonly path: string;
  /** Vocabulary size: the length of each logits row. */
  readonly nVocab: number;
  /** Context length in tokens, as llama.cpp reports it (0 when loaded vocab-only). */
  readonly nCtx: number;

  private constructor(
    llama: LlamaSymbols,
    path: string,
    model: Deno.PointerObject,
    vocab: Deno.PointerObject,
    ctx: Deno.PointerObject | null,
  ) {
    this.#llama = llama;
    this.#model = model;
    this.#vocab = vocab;
    this.#ctx = ctx;
    this.path = path;
    this.nVocab = llama.llama_vocab_n_tokens(vocab);
    this.nCtx = ctx === null ? 0 : llama.llama_n_ctx(ctx);
  }

  /**
   * Loads `path` with llama.cpp and creates a context: `threads` threads, F32
   * KV cache, flash attention off, batch = ubatch = context length.
   *
   * @throws {EdgeMoeError} `io` when the file cannot be read, `corrupt_data` when llama.cpp refuses it (the
   * message carries llama.cpp's own error lines), `invalid_argument` for bad options.
   */
  static load(path: string, opts: LlamaModelOptions = {}): LlamaModel {
    const op = `load ${path} with llama.cpp`;
    const threads = opts.threads ?? 1;
    for (const [name, v, lo, hi] of [["threads", threads, 1, 64], ["nCtx", opts.nCtx ?? 256, 1, 1 << 20]] as const) {
      if (!Number.isInteger(v) || v < lo || v > hi) {
        throw new EdgeMoeError("invalid_argument", op, `${name} must be an integer in [${lo}, ${hi}], got ${v}`);
      }
    }
    // llama.cpp pads the context to a multiple of 256; the batch gets the same size so one
    // llama_decode can take a whole context.
    const nCtx = Math.ceil((opts.nCtx ?? 256) / 256) * 256;
    try {
      if (!Deno.statSync(path).isFile) throw new Error("not a regular file");
    } catch (e) {
      throw new EdgeMoeError("io", op, `cannot read the model file: ${(e as Error).message}`, { cause: e });
    }
    const llama = openLlama(opts.dir);
    const mp = llama.llama_model_default_params();
    const mview = new DataView(mp.buffer, mp.byteOffset, mp.byteLength);
    mview.setInt32(MODEL_PARAMS.n_gpu_layers, 0, true);
    mview.setUint8(MODEL_PARAMS.vocab_only, opts.vocabOnly ? 1 : 0);
    const logStart = llamaLogMark();
    const model = logged(() => llama.llama_model_load_from_file(cString(path), mp));
    if (model === null) {
      throw new EdgeMoeError("corrupt_data", op, `llama.cpp refused the file: ${errorLines(logStart)}`);
    }
    const vocab = llama.llama_model_get_vocab(model);
    if (vocab === null) {
      logged(() => llama.llama_model_free(model));
      throw new EdgeMoeError("corrupt_data", op, "llama.cpp built no vocabulary");
    }
    if (opts.vocabOnly) return new LlamaModel(llama, path, model, vocab, null);
    const cp = llama.llama_context_default_params();
    const c = new DataView(cp.buffer, cp.byteOffset, cp.byteLength);
    c.setUint32(CONTEXT_PARAMS.n_ctx, nCtx, true);
    c.setUint32(CONTEXT_PARAMS.n_batch, nCtx, true);
    c.setUint32(CONTEXT_PARAMS.n_ubatch, nCtx, true);
    c.setInt32(CONTEXT_PARAMS.n_threads, threads, true);
    c.setInt32(CONTEXT_PARAMS.n_threads_batch, threads, true);
    c.setInt32(CONTEXT_PARAMS.flash_attn_type, opts.flashAttn ?? 0, true);
    c.setInt32(CONTEXT_PARAMS.type_k, opts.kvType ?? 0, true);
    c.setInt32(CONTEXT_PARAMS.type_v, opts.kvType ?? 0, true);
    const ctx = logged(() => llama.llama_init_from_model(model, cp));
    if (ctx === null) {
      logged(() => llama.llama_model_free(model));
      throw new EdgeMoeError("corrupt_data", op, `llama.cpp could not create a context: ${errorLines(logStart)}`);
    }
    return new LlamaModel(llama, path, model, vocab, ctx);
  }

  #live(op: string): { model: Deno.PointerObject; ctx: Deno.PointerObject | null } {
    if (this.#model === null) throw new EdgeMoeError("closed", op, `the llama.cpp model ${this.path} was closed`);
    return { model: this.#model, ctx: this.#ctx };
  }

  #context(op: string): Deno.PointerObject {
    const { ctx } = this.#live(op);
    if (ctx === null) {
      throw new EdgeMoeError("unsupported", op, `${this.path} was loaded vocab-only: there is no context to run`);
    }
    return ctx;
  }

  /** Facts llama.cpp reports about the model and context (what it read from the file); vocab-only: vocabulary facts, 0 elsewhere. */
  info(): {
    desc: string;
    nEmbd: number;
    nLayer: number;
    nHead: number;
    nHeadKv: number;
    vocabType: number;
    bos: number;
    eos: number;
    addBos: boolean;
    nBatch: number;
    nUbatch: number;
    nSeqMax: number;
    threads: number;
    threadsBatch: number;
  } {
    const { model, ctx } = this.#live("model info");
    const l = this.#llama;
    const vocab = {
      vocabType: l.llama_vocab_type(this.#vocab),
      bos: l.llama_vocab_bos(this.#vocab),
      eos: l.llama_vocab_eos(this.#vocab),
      addBos: l.llama_vocab_get_add_bos(this.#vocab),
    };
    // A vocab-only model has no hyperparameters: llama.cpp aborts the process if they are read.
    if (ctx === null) {
      const none = { nEmbd: 0, nLayer: 0, nHead: 0, nHeadKv: 0, nBatch: 0, nUbatch: 0, nSeqMax: 0 };
      return { desc: "", ...none, ...vocab, threads: 0, threadsBatch: 0 };
    }
    const buf = new Uint8Array(256);
    const n = l.llama_model_desc(model, buf, BigInt(buf.length));
    return {
      desc: new TextDecoder().decode(buf.subarray(0, Math.max(0, Math.min(n, buf.length - 1)))),
      nEmbd: l.llama_model_n_embd(model),
      nLayer: l.llama_model_n_layer(model),
      nHead: l.llama_model_n_head(model),
      nHeadKv: l.llama_model_n_head_kv(model),
      ...vocab,
      nBatch: l.llama_n_batch(ctx),
      nUbatch: l.llama_n_ubatch(ctx),
      nSeqMax: l.llama_n_seq_max(ctx),
      threads: l.llama_n_threads(ctx),
      threadsBatch: l.llama_n_threads_batch(ctx),
    };
  }

  /** A scalar GGUF metadata value as text (llama.cpp's rendering), or `undefined` if the key is absent. */
  meta(key: string): string | undefined {
    const { model } = this.#live(`read metadata ${key}`);
    let buf = new Uint8Array(256);
    let n = this.#llama.llama_model_meta_val_str(model, cString(key), buf, BigInt(buf.length));
    if (n < 0) return undefined;
    if (n >= buf.length) {
      buf = new Uint8Array(n + 1);
      n = this.#llama.llama_model_meta_val_str(model, cString(key), buf, BigInt(buf.length));
    }
    return new TextDecoder().decode(buf.subarray(0, n));
  }

  /** Token ids of `text`, by llama.cpp's tokenizer for this model. */
  tokenize(text: string, opts: TokenizeOptions = {}): Int32Array {
    this.#live("tokenize");
    const bytes = new TextEncoder().encode(text);
    const run = (cap: number): [Int32Array, number] => {
      const out = new Int32Array(cap);
      const n = logged(() =>
        this.#llama.llama_tokenize(
          this.#vocab,
          bytes,
          bytes.length,
          new Uint8Array(out.buffer),
          cap,
          opts.addSpecial ?? true,
          opts.parseSpecial ?? true,
        )
      );
      return [out, n];
    };
    let [out, n] = run(bytes.length + 8);
    if (n < 0) [out, n] = run(-n);
    if (n < 0) {
      throw new EdgeMoeError("native_error", "tokenize", `llama_tokenize returned ${n} for ${bytes.length} bytes`);
    }
    return out.slice(0, n);
  }

  /** The text of `ids`, by llama.cpp's detokenizer (invalid UTF-8 becomes U+FFFD). */
  detokenize(ids: ArrayLike<number>, opts: DetokenizeOptions = {}): string {
    this.#live("detokenize");
    const toks = this.#checkIds(ids, "detokenize");
    const run = (cap: number): [Uint8Array, number] => {
      const out = new Uint8Array(cap);
      const n = this.#llama.llama_detokenize(
        this.#vocab,
        new Uint8Array(toks.buffer),
        toks.length,
        out,
        cap,
        opts.removeSpecial ?? false,
        opts.unparseSpecial ?? true,
      );
      return [out, n];
    };
    let [out, n] = run(toks.length * 16 + 16);
    if (n < 0) [out, n] = run(-n);
    if (n < 0) throw new EdgeMoeError("native_error", "detokenize", `llama_detokenize returned ${n}`);
    return new TextDecoder().decode(out.subarray(0, n));
  }

  /** The raw bytes of one token's piece (special tokens rendered as text). */
  piece(id: number): Uint8Array {
    this.#live("token piece");
    this.#checkIds([id], "token piece");
    let out = new Uint8Array(64);
    let n = this.#llama.llama_token_to_piece(this.#vocab, id, out, out.length, 0, true);
    if (n < 0) {
      out = new Uint8Array(-n);
      n = this.#llama.llama_token_to_piece(this.#vocab, id, out, out.length, 0, true);
    }
    return out.slice(0, Math.max(0, n));
  }

  #checkIds(ids: ArrayLike<number>, op: string): Int32Array {
    const toks = Int32Array.from(ids);
    for (let i = 0; i < ids.length; i++) {
      if (!Number.isInteger(ids[i]) || ids[i] < 0 || ids[i] >= this.nVocab) {
        throw new EdgeMoeError(
          "invalid_argument",
          op,
          `token ${i} is ${ids[i]}, expected an id in [0, ${this.nVocab})`,
        );
      }
    }
    return toks;
  }

  /**
   * Clears the KV cache, then runs `tokens` (positions 0..n-1, one sequence)
   * through the model and returns the logits of every position, each a copy
   * of `nVocab` floats. By default the whole sequence is one `llama_decode`
   * (llama.cpp's batched prompt path); `oneByOne` decodes one token per call
   * against the KV cache, the path llama.cpp takes while generating.
   *
   * @throws {EdgeMoeError} `invalid_argument` for ids out of range or more tokens than the context holds.
   */
  evaluate(tokens: ArrayLike<number>, opts: { oneByOne?: boolean } = {}): Float32Array[] {
    const op = "evaluate with llama.cpp";
    const ctx = this.#context(op);
    const toks = this.#checkIds(tokens, op);
    if (toks.length === 0 || toks.length > this.nCtx) {
      throw new EdgeMoeError("invalid_argument", op, `expected 1..${this.nCtx} tokens, got ${toks.length}`);
    }
    this.#llama.llama_memory_clear(this.#llama.llama_get_memory(ctx), true);
    if (!opts.oneByOne) return this.#decode(ctx, toks, 0, true);
    return Array.from(toks, (_, i) => this.#decode(ctx, toks.subarray(i, i + 1), i, true)[0]);
  }

  /**
   * Greedy continuation as llama.cpp computes it: evaluates `prompt`, then
   * `n` times appends the argmax of the last logits (lowest id on a tie) and
   * decodes that one token. Returns the `n` generated ids.
   */
  greedy(prompt: ArrayLike<number>, n: number): Int32Array {
    const op = "greedy generation with llama.cpp";
    const ctx = this.#context(op);
    const toks = this.#checkIds(prompt, op);
    if (!Number.isInteger(n) || n < 0 || toks.length === 0 || toks.length + n > this.nCtx) {
      throw new EdgeMoeError("invalid_argument", op, `prompt ${toks.length} + ${n} tokens must fit in ${this.nCtx}`);
    }
    this.#llama.llama_memory_clear(this.#llama.llama_get_memory(ctx), true);
    let last = this.#decode(ctx, toks, 0, false)[0];
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      out[i] = argmaxOf(last);
      last = this.#decode(ctx, out.subarray(i, i + 1), toks.length + i, false)[0];
    }
    return out;
  }

  #decode(ctx: Deno.PointerObject, toks: Int32Array, pos0: number, all: boolean): Float32Array[] {
    const n = toks.length;
    const pos = new Int32Array(n).map((_, i) => pos0 + i);
    const outputs = new Int8Array(n);
    if (all) outputs.fill(1);
    else outputs[n - 1] = 1;
    const batch = new Uint8Array(56);
    const b = new DataView(batch.buffer);
    b.setInt32(0, n, true);
    b.setBigUint64(8, ptrValue(toks), true);
    b.setBigUint64(24, ptrValue(pos), true);
    b.setBigUint64(48, ptrValue(outputs), true);
    const rc = logged(() => this.#llama.llama_decode(ctx, batch));
    if (rc !== 0) {
      throw new EdgeMoeError("native_error", "llama_decode", `returned ${rc} for ${n} tokens at position ${pos0}`);
    }
    const rows: Float32Array[] = [];
    for (let i = all ? 0 : n - 1; i < n; i++) {
      const p = this.#llama.llama_get_logits_ith(ctx, i);
      if (p === null) throw new EdgeMoeError("native_error", "llama_get_logits_ith", `no logits for output ${i}`);
      rows.push(new Float32Array(Deno.UnsafePointerView.getArrayBuffer(p, this.nVocab * 4).slice(0)));
    }
    return rows;
  }

  /** Frees the context and the model. Safe to call twice. */
  close(): void {
    const [ctx, model] = [this.#ctx, this.#model];
    logged(() => {
      if (ctx !== null) this.#llama.llama_free(ctx);
      if (model !== null) this.#llama.llama_model_free(model);
    });
    this.#ctx = null;
    this.#model = null;
  }

  /** Same as {@linkcode LlamaModel.close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}

function ptrValue(a: ArrayBufferView): bigint {
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(a as Uint8Array<ArrayBuffer>)));
}

/** The error-looking lines llama.cpp logged since `mark`. */
function errorLines(mark: number): string {
  const lines = llamaLog(mark).filter((l) => /error|fail|missing|wrong|invalid|unknown|expected/i.test(l));
  return lines.length > 0 ? lines.slice(-6).join(" | ") : "llama.cpp logged no error line";
}
