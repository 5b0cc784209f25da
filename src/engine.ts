/**
 * The engine: a model file, a tokenizer, the MoE graph, and (when the experts
 * are to stay on disk) an expert store sized by the memory budget.
 *
 * @module
 */
import { EdgeMoeError } from "./errors.ts";
import { NativeLibrary, type ThreadPool } from "../ffi/native.ts";
import type { ReadFault, StoreBackend } from "../ffi/slot_reader.ts";
import { GgufFile } from "./gguf/mod.ts";
import { isPack, PackFile } from "./pack/mod.ts";
import { ggufWeights } from "./models/gguf_weights.ts";
import { MoeModel } from "./models/model.ts";
import type { ExpertSource, TensorData } from "./models/weights.ts";
import { ExpertStore, type ExpertStoreStats } from "./store/expert_store.ts";
import { cachePolicy } from "./store/policy.ts";
import { availableMemory, type MemoryNeeds, type MemoryPlan, parseSize, planMemory } from "./store/budget.ts";
import { tokenizerFromGgufFile } from "./tokenizer/mod.ts";
import type { Tokenizer } from "./types.ts";
import { type ChatMessage, ChatTemplate } from "./template/chat_template.ts";
import {
  combinedPredictor,
  lookaheadPredictor,
  noPredictor,
  type Predictor,
  type PredictorStats,
  profileFromJson,
  type RoutingProfile,
  tablePredictor,
} from "./predictor/predictor.ts";

/** Where experts are read from: `"ram"` loads them all; the others keep them on disk. */
export type ExpertStoreKind = "ram" | StoreBackend;

/** Options of {@linkcode createEngine}. */
export interface EngineOptions {
  /** Bytes (or a size such as `"2GiB"`) the process may use; default: 90% of available memory. */
  memBudget?: number | string;
  /** Expert store (default `"ram"` if every expert fits in the budget, else `"uring"`). */
  store?: ExpertStoreKind;
  /** Expert cache policy: `"lru"` (default), `"lfu"` or `"edgemoe"`. */
  cachePolicy?: string;
  /** Context length in tokens (default: the model's, at most 4096). */
  nCtx?: number;
  /** The native library to use (default: the process-wide one). */
  lib?: NativeLibrary;
  /**
   * Expert predictor: `"none"`, `"lookahead"`, `"table"` (needs `profile`) or `"combined"` (default
   * with a disk store: look-ahead blended with a transition table learned while decoding, seeded from
   * `profile` if given; with the `"ram"` store, where every expert is resident and there is nothing to
   * read ahead, the default is `"none"`).
   */
  predictor?: "none" | "lookahead" | "table" | "combined";
  /** A routing profile from `edgemoe profile` (for the table and combined predictors). */
  profile?: string;
  /** Experts to prefetch per layer (default: the model's experts per token, see bench/prediction.md). */
  prefetchDepth?: number;
  /** Called with each layer's routing (profiling, statistics). */
  onRoute?: (layer: number, ids: Uint32Array) => void;
  /** A chat template (Jinja source) replacing the model's `tokenizer.chat_template`. */
  chatTemplate?: string;
  /** Called while loading: each stage with the fraction of the load done (0..1). */
  onProgress?: (
    progress: { stage: "file" | "tokenizer" | "memory plan" | "weights" | "ready"; fraction: number },
  ) => void;
  /** Compute threads (default: the number of cores). Tokens are identical for any count. */
  threads?: number;
  /** KV cache element type: `"f32"` (default) or `"f16"` (half the memory, as llama.cpp's default `-ctk f16 -ctv f16`). */
  kvType?: "f32" | "f16";
  /** Inject a read fault into the expert store (testing what a failing disk does). */
  storeFault?: ReadFault;
}

/** Options of {@linkcode Engine.generate}. */
export interface GenerateOptions {
  /** Most tokens to generate (default 128). */
  maxTokens?: number;
  /** Picks the next token from the logits (default: greedy, lowest id on ties). */
  sample?: (logits: Float32Array, history: readonly number[]) => number;
  /** Stop at an end-of-generation token (default true). */
  stopAtEog?: boolean;
  /** Stops generation at the next token when aborted. */
  signal?: AbortSignal;
}

/** One generated token. */
export interface GeneratedToken {
  id: number;
  /** The text this token completed (may be empty while a UTF-8 character is incomplete). */
  text: string;
}

/** What {@linkcode Engine.generate} takes: text, chat messages, or token ids. */
export type GenerateInput = string | ChatMessage[] | ArrayLike<number>;

/** Options of {@linkcode Engine.generate}. */
export interface StreamOptions extends GenerateOptions {
  /** Stop before any of these strings (they are not emitted). */
  stop?: string[];
}

/** A piece of a generation: text as it comes, then one `done` with usage and timings. */
export type GenerateChunk =
  | { type: "text"; text: string }
  | {
    type: "done";
    /** `"stop"` (end of generation or a stop string), `"length"` (maxTokens) or `"cancelled"` (signal). */
    finishReason: "stop" | "length" | "cancelled";
    usage: { promptTokens: number; completionTokens: number };
    timings: { promptMs: number; generationMs: number; promptTokensPerSecond: number; tokensPerSecond: number };
  };

/** Counters of an engine. */
export interface EngineStats {
  /** Tokens evaluated since open. */
  tokensEvaluated: number;
  /** The expert store's counters, when experts are on disk. */
  store?: ExpertStoreStats;
  /** The predictor's precision/recall counts. */
  predictor: PredictorStats & { name: string };
  /** The largest resident set of the process seen (sampled after each prompt chunk, every 16th token, and now). */
  peakRssBytes: number;
}

const EXPERT_TENSOR = /^blk\.\d+\.ffn_(gate|up|down)(_exps|\.\d+)\.weight$/;
const RUNTIME_OVERHEAD_BYTES = 96 << 20;
/** Prompt tokens evaluated together. */
const PREFILL_CHUNK = 64;

/** Greedy choice: the largest logit, lowest id on ties. */
export function greedy(logits: Float32Array): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  return best;
}

/** A loaded model ready to generate. Close it (or `using`) when done. */
export class Engine implements Disposable, AsyncDisposable {
  /** The model's tokenizer. */
  readonly tokenizer: Tokenizer;
  /** The loaded graph (hyperparameters in `model.hp`). */
  readonly model: MoeModel;
  /** Where experts come from. */
  readonly store: ExpertStoreKind;
  /** The memory plan, when experts are on disk. */
  readonly plan: MemoryPlan | undefined;
  readonly #file: GgufFile;
  readonly #pack: PackFile | undefined;
  readonly #experts: ExpertStore | undefined;
  readonly #predictor: Predictor;
  readonly #pool: ThreadPool | undefined;
  readonly #chatSource: string | undefined;
  #chat: ChatTemplate | undefined;
  #tokens: number[] = [];
  #evaluated = 0;
  #peakRss = 0;
  #closed = false;

  private constructor(
    file: GgufFile,
    pack: PackFile | undefined,
    model: MoeModel,
    tokenizer: Tokenizer,
    store: ExpertStoreKind,
    experts: ExpertStore | undefined,
    plan: MemoryPlan | undefined,
    predictor: Predictor,
    chatSource: string | undefined,
    pool: ThreadPool | undefined,
  ) {
    this.#pool = pool;
    this.#predictor = predictor;
    this.#chatSource = chatSource;
    this.#file = file;
    this.#pack = pack;
    this.model = model;
    this.tokenizer = tokenizer;
    this.store = store;
    this.#experts = experts;
    this.plan = plan;
  }

  /** Opens a GGUF file or pack. See {@linkcode createEngine}. */
  static open(path: string, opts: EngineOptions = {}): Engine {
    const lib = opts.lib ?? NativeLibrary.open();
    const file = GgufFile.open(path);
    try {
      const progress = opts.onProgress ?? (() => {});
      progress({ stage: "file", fraction: 0.05 });
      const pack = isPack(file) ? PackFile.fromGguf(file) : undefined;
      const weights = ggufWeights(file, (n) => lib.allocateWeights(n));
      progress({ stage: "tokenizer", fraction: 0.1 });
      const tokenizer = tokenizerFromGgufFile(file);
      const nCtxTrain = weights.number(`${weights.arch}.context_length`) ?? 4096;
      const nCtx = opts.nCtx ?? Math.min(nCtxTrain, 4096);
      if (!Number.isInteger(nCtx) || nCtx < 1) {
        throw new EdgeMoeError("invalid_argument", "open engine", `nCtx must be a positive integer, got ${nCtx}`);
      }
      progress({ stage: "memory plan", fraction: 0.2 });
      const plan = planFor(file, pack, weights, nCtx, opts);
      let experts: ExpertStore | undefined;
      let source: ExpertSource | undefined;
      if (plan.store !== "ram") {
        experts = openStore(
          lib,
          path,
          file,
          pack,
          plan.plan!,
          plan.store,
          opts.cachePolicy ?? "lru",
          plan.parts,
          opts.storeFault,
        );
        source = experts;
      }
      const threads = opts.threads ?? navigator.hardwareConcurrency ?? 1;
      if (!Number.isInteger(threads) || threads < 1 || threads > 256) {
        experts?.close();
        throw new EdgeMoeError(
          "invalid_argument",
          "open engine",
          `threads must be an integer in 1..256, got ${threads}`,
        );
      }
      const pool = threads > 1 ? lib.createPool(threads) : undefined;
      try {
        const predictor = makePredictor(opts, file, plan.store === "ram");
        progress({ stage: "weights", fraction: 0.3 });
        const model = new MoeModel(weights, lib, {
          nCtx,
          experts: source,
          predictor,
          onRoute: opts.onRoute,
          pool,
          kvType: opts.kvType,
        });
        if (tokenizer.vocabSize !== model.hp.nVocab) {
          throw new EdgeMoeError(
            "corrupt_data",
            "open engine",
            `tokenizer has ${tokenizer.vocabSize} tokens but token_embd has ${model.hp.nVocab} rows`,
          );
        }
        progress({ stage: "ready", fraction: 1 });
        const chat = opts.chatTemplate ??
          (file.has("tokenizer.chat_template") ? file.getString("tokenizer.chat_template") : undefined);
        return new Engine(file, pack, model, tokenizer, plan.store, experts, plan.plan, predictor, chat, pool);
      } catch (e) {
        pool?.close();
        experts?.close();
        throw e;
      }
    } catch (e) {
      file.close();
      throw e;
    }
  }

  /** Tokens of the current sequence. */
  get tokens(): readonly number[] {
    return this.#tokens;
  }

  /**
   * Appends `tokens` to the sequence and returns the logits after the last one.
   *
   * @throws {EdgeMoeError} `invalid_argument` when the context is full or an id is out of range.
   */
  evaluate(tokens: ArrayLike<number>): Float32Array {
    this.#open();
    if (tokens.length === 0) throw new EdgeMoeError("invalid_argument", "evaluate", "no tokens given");
    if (this.#tokens.length + tokens.length > this.model.nCtx) {
      throw new EdgeMoeError(
        "invalid_argument",
        "evaluate",
        `${this.#tokens.length} + ${tokens.length} tokens exceed the context of ${this.model.nCtx}`,
      );
    }
    let logits!: Float32Array;
    // Prompts go in chunks (each routed expert read once per chunk); single tokens one at a time.
    for (let i = 0; i < tokens.length; i += PREFILL_CHUNK) {
      const chunk = Array.from({ length: Math.min(PREFILL_CHUNK, tokens.length - i) }, (_, j) => tokens[i + j]);
      logits = chunk.length === 1
        ? this.model.forward(chunk[0], this.#tokens.length)
        : this.model.forwardBatch(chunk, this.#tokens.length);
      this.#tokens.push(...chunk);
      this.#evaluated += chunk.length;
      // getrusage's peak would include whatever the parent had when it forked us; sample instead:
      // after every prompt chunk and every 16th token (a sample costs ~35 µs, 5% of a demo-model token).
      if (chunk.length > 1 || this.#evaluated % 16 === 0) {
        this.#peakRss = Math.max(this.#peakRss, Deno.memoryUsage().rss);
      }
    }
    return logits;
  }

  /** Forgets the sequence (the KV cache is overwritten from position 0). */
  reset(): void {
    this.#tokens = [];
  }

  /**
   * Generates from `prompt` (text, tokenized with BOS as the model asks; or ids)
   * after the current sequence, yielding tokens as they come — synchronously,
   * for scripts and loops that own the thread. See {@linkcode Engine.generate}
   * for the streaming, abortable form with usage and timings.
   */
  *generateSync(prompt: string | ArrayLike<number>, opts: GenerateOptions = {}): Generator<GeneratedToken> {
    const ids = typeof prompt === "string"
      ? this.tokenizer.encode(prompt, { addSpecial: this.#tokens.length === 0, parseSpecial: true })
      : prompt;
    const maxTokens = opts.maxTokens ?? 128;
    const sample = opts.sample ?? greedy;
    const decoder = this.tokenizer.createStreamDecoder();
    let logits = this.evaluate(ids);
    for (let n = 0; n < maxTokens && !opts.signal?.aborted; n++) {
      const id = sample(logits, this.#tokens);
      const eog = this.tokenizer.eogIds.has(id);
      if (eog && opts.stopAtEog !== false) break;
      yield { id, text: decoder.push(id) };
      if (n + 1 === maxTokens || this.#tokens.length >= this.model.nCtx) break;
      logits = this.evaluate([id]);
    }
    const rest = decoder.flush();
    if (rest) yield { id: -1, text: rest };
  }

  /**
   * Generates from a prompt (text, chat messages rendered with the chat
   * template, or token ids) as an async stream of text chunks, ending with one
   * `done` chunk holding the finish reason, token usage and timings. Between
   * tokens it yields to the event loop, so `signal` (and I/O) are honoured;
   * text matching a stop string is never emitted.
   *
   * @throws {EdgeMoeError} `invalid_argument` for an empty prompt or one longer than the context.
   */
  async *generate(input: GenerateInput, opts: StreamOptions = {}): AsyncGenerator<GenerateChunk> {
    const t0 = performance.now();
    let ids: ArrayLike<number>;
    if (typeof input === "string") ids = this.tokenizer.encode(input, { addSpecial: this.#tokens.length === 0 });
    else if (Array.isArray(input) && input.length > 0 && typeof input[0] === "object") {
      const text = this.applyChatTemplate(input as ChatMessage[], true);
      ids = this.tokenizer.encode(text, { addSpecial: this.#tokens.length === 0, parseSpecial: true });
    } else ids = input as ArrayLike<number>;
    if (ids.length === 0) throw new EdgeMoeError("invalid_argument", "generate", "the prompt is empty");
    if (this.#tokens.length + ids.length + 1 > this.model.nCtx) {
      throw new EdgeMoeError(
        "invalid_argument",
        "generate",
        `the prompt has ${ids.length} tokens; the context holds ${this.model.nCtx - this.#tokens.length} more`,
      );
    }
    const stop = opts.stop ?? [];
    const holdBack = Math.max(0, ...stop.map((x) => x.length - 1));
    const maxTokens = opts.maxTokens ?? 128;
    let text = "", sent = 0, count = 0, firstAt = 0;
    let finishReason: GenerateChunk & { type: "done" } extends { finishReason: infer F } ? F : never = "length";
    for (const t of this.generateSync(ids, opts)) {
      if (count === 0) firstAt = performance.now();
      if (t.id >= 0) count++;
      text += t.text;
      const hit = stop.map((x) => text.indexOf(x, Math.max(0, sent - x.length))).filter((i) => i >= 0);
      if (hit.length > 0) {
        text = text.slice(0, Math.min(...hit));
        finishReason = "stop";
        break;
      }
      const safe = text.length - holdBack;
      if (safe > sent) {
        yield { type: "text", text: text.slice(sent, safe) };
        sent = safe;
      }
      await new Promise((r) => setTimeout(r, 0));
    }
    if (text.length > sent) yield { type: "text", text: text.slice(sent) };
    if (opts.signal?.aborted) finishReason = "cancelled";
    else if (finishReason === "length" && count < maxTokens) finishReason = "stop";
    const end = performance.now();
    const promptMs = (firstAt || end) - t0, genMs = firstAt ? end - firstAt : 0;
    yield {
      type: "done",
      finishReason,
      usage: { promptTokens: ids.length, completionTokens: count },
      timings: {
        promptMs,
        generationMs: genMs,
        promptTokensPerSecond: promptMs > 0 ? ids.length / (promptMs / 1000) : 0,
        tokensPerSecond: count > 1 && genMs > 0 ? (count - 1) / (genMs / 1000) : 0,
      },
    };
  }

  /**
   * Renders `messages` with the model's chat template (or the one given at
   * open), ending with the assistant's header when `addGenerationPrompt`.
   *
   * @throws {EdgeMoeError} `unsupported` if the model has no template or uses a construct the engine lacks.
   */
  applyChatTemplate(messages: ChatMessage[], addGenerationPrompt = true): string {
    if (this.#chatSource === undefined) {
      throw new EdgeMoeError(
        "unsupported",
        "chat",
        "the model has no tokenizer.chat_template; pass one (--chat-template-file)",
      );
    }
    this.#chat ??= ChatTemplate.fromString(this.#chatSource);
    const t = this.tokenizer;
    const text = (id: number | undefined) => (id === undefined ? undefined : t.decode([id], { renderSpecial: true }));
    return this.#chat.render(messages, { addGenerationPrompt, bosToken: text(t.bosId), eosToken: text(t.eosId) });
  }

  /** Counters since open. */
  stats(): EngineStats {
    this.#peakRss = Math.max(this.#peakRss, Deno.memoryUsage().rss);
    return {
      tokensEvaluated: this.#evaluated,
      store: this.#experts?.stats(),
      predictor: { name: this.#predictor.name, ...this.#predictor.stats() },
      peakRssBytes: this.#peakRss,
    };
  }

  #open(): void {
    if (this.#closed) throw new EdgeMoeError("closed", "engine", "the engine was closed");
  }

  /** Closes the store and the file. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#pool?.close();
    this.#experts?.close();
    if (this.#pack) this.#pack.close();
    else this.#file.close();
  }

  /** Same as `close()`. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Same as `close()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }
}

/**
 * Loads a model for generation.
 *
 * @example
 * ```ts
 * import { createEngine } from "@edgemoe/edgemoe";
 * await using engine = createEngine("model.gguf", { memBudget: "2GiB" });
 * for await (const c of engine.generate("Once upon a time", { maxTokens: 32 })) {
 *   if (c.type === "text") console.log(c.text);
 *   else console.log(c.usage, c.timings);
 * }
 * ```
 *
 * @throws {EdgeMoeError} `out_of_memory` (with the smallest budget that works), `unsupported`, `corrupt_data`, `io`.
 */
export function createEngine(path: string, opts: EngineOptions = {}): Engine {
  return Engine.open(path, opts);
}

function makePredictor(opts: EngineOptions, file: GgufFile, resident: boolean): Predictor {
  const a = file.getString("general.architecture");
  const nLayer = file.getInt(`${a}.block_count`), nExpert = file.getInt(`${a}.expert_count`);
  const depth = opts.prefetchDepth ?? file.getInt(`${a}.expert_used_count`);
  // All experts in RAM: nothing to read ahead, so by default no prediction work per layer.
  const kind = opts.predictor ?? (resident ? "none" : "combined");
  const readProfile = (path: string): RoutingProfile => {
    let text: string;
    try {
      text = Deno.readTextFileSync(path);
    } catch (e) {
      throw new EdgeMoeError("io", "create predictor", `cannot read profile ${path}`, { cause: e });
    }
    const profile = profileFromJson(text, path);
    if (profile.nLayers !== nLayer || profile.nExperts !== nExpert) {
      throw new EdgeMoeError(
        "invalid_argument",
        "create predictor",
        `profile ${path} is for ${profile.nLayers} layers × ${profile.nExperts} experts, the model has ${nLayer} × ${nExpert}`,
      );
    }
    return profile;
  };
  switch (kind) {
    case "none":
      return noPredictor();
    case "lookahead":
      return lookaheadPredictor(depth);
    case "table":
      if (!opts.profile) {
        throw new EdgeMoeError(
          "invalid_argument",
          "create predictor",
          "the table predictor needs a profile (--profile FILE from `edgemoe profile`)",
        );
      }
      return tablePredictor(readProfile(opts.profile), depth);
    case "combined":
      return combinedPredictor(depth, nLayer, nExpert, opts.profile ? readProfile(opts.profile) : undefined);
    default:
      throw new EdgeMoeError(
        "invalid_argument",
        "create predictor",
        `unknown predictor "${kind}"; known: none, lookahead, table, combined`,
      );
  }
}

interface StorePlan {
  store: ExpertStoreKind;
  plan?: MemoryPlan;
  parts: number;
}

function planFor(
  file: GgufFile,
  pack: PackFile | undefined,
  weights: ReturnType<typeof ggufWeights>,
  nCtx: number,
  opts: EngineOptions,
): StorePlan {
  const a = weights.arch;
  const num = (k: string, d: number) => weights.number(`${a}.${k}`) ?? d;
  const nEmbd = num("embedding_length", 0), nLayer = num("block_count", 0), nHead = num("attention.head_count", 1);
  const headDim = num("attention.key_length", nEmbd / nHead);
  const kvDim = num("attention.head_count_kv", nHead) * headDim;
  let residentBytes = 0, expertBytes = 0, maxPart = 0;
  for (const t of file.tensors) {
    if (EXPERT_TENSOR.test(t.name)) {
      expertBytes += t.bytes;
      if (t.dims.length === 3) maxPart = Math.max(maxPart, t.bytes / t.dims[2]);
    } else residentBytes += t.bytes;
  }
  const parts = pack ? 1 : 3;
  if (pack) maxPart = Math.max(...pack.blobs().map((b) => b.length));
  const nExpert = num("expert_count", 1), used = num("expert_used_count", 1);
  const needs: MemoryNeeds = {
    residentBytes,
    kvBytes: nLayer * nCtx * kvDim * 2 * (opts.kvType === "f16" ? 2 : 4),
    scratchBytes: RUNTIME_OVERHEAD_BYTES + 64 * nEmbd * 4 + 4 * 4 * (weights.tensor("token_embd.weight")?.dims[1] ?? 0),
    slotBytes: Math.ceil((maxPart + 4096) / 4096) * 4096,
    partsPerExpert: parts,
    expertsPerToken: used,
    totalExperts: nLayer * nExpert,
  };
  const budget = opts.memBudget !== undefined
    ? parseSize(opts.memBudget)
    : Math.floor((availableMemory() ?? 8 * 1024 ** 3) * 0.9);
  const all = needs.residentBytes + needs.kvBytes + needs.scratchBytes + expertBytes;
  const store = opts.store ?? (all <= budget ? "ram" : "uring");
  if (store === "ram") {
    if (all > budget) {
      throw new EdgeMoeError(
        "out_of_memory",
        "plan memory",
        `--store ram needs ${all} bytes (all experts in RAM) but the budget is ${budget}; use a disk store (uring, pread, mmap) or a budget of at least ${all}`,
      );
    }
    return { store, parts };
  }
  return { store, plan: planMemory(needs, budget), parts };
}

function openStore(
  lib: NativeLibrary,
  path: string,
  file: GgufFile,
  pack: PackFile | undefined,
  plan: MemoryPlan,
  backend: StoreBackend,
  policy: string,
  parts: number,
  fault: ReadFault | undefined,
): ExpertStore {
  const a = file.getString("general.architecture");
  const nLayer = file.getInt(`${a}.block_count`), nExpert = file.getInt(`${a}.expert_count`);
  const reader = lib.openSlotReader(path, { backend, slotCount: plan.slotCount, slotBytes: plan.slotBytes, fault });
  const view = (name: string, type: number, dims: readonly number[], data: Uint8Array): TensorData => ({
    name,
    type,
    dims,
    data,
  });
  return new ExpertStore(reader, {
    nLayers: nLayer,
    nExperts: nExpert,
    partsPerExpert: parts,
    policy: cachePolicy(policy),
    locate: pack
      ? (layer, id) => {
        const b = pack.expert(layer, id);
        return {
          parts: [{ offset: b.offset, length: b.length, checksum: b.checksum }],
          build: ([blob]) => {
            const t = (p: "gate" | "up" | "down") => {
              const bt = b.tensors[p];
              return view(bt.name, bt.type.id, bt.dims, blob.subarray(bt.offset, bt.offset + bt.bytes));
            };
            return { gate: t("gate"), up: t("up"), down: t("down") };
          },
        };
      }
      : (layer, id) => {
        const infos = (["gate", "up", "down"] as const).map((p) => {
          const t = file.tensor(`blk.${layer}.ffn_${p}_exps.weight`);
          if (!t || t.dims.length !== 3) {
            throw new EdgeMoeError(
              "corrupt_data",
              "read expert",
              `blk.${layer}.ffn_${p}_exps.weight is missing or not 3-D`,
            );
          }
          return t;
        });
        return {
          parts: infos.map((t) => {
            const bytes = t.bytes / t.dims[2];
            return { offset: t.offset + id * bytes, length: bytes, checksum: 0n };
          }),
          build: (views) => {
            const [gate, up, down] = infos.map((t, i) =>
              view(`${t.name}[${id}]`, t.type.id, [t.dims[0], t.dims[1]], views[i])
            );
            return { gate, up, down };
          },
        };
      },
  });
}
