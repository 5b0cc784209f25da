/**
 * Tokenizers from GGUF metadata (the `tokenizer.ggml.*` keys), with
 * llama.cpp's defaults for keys a file leaves out.
 *
 * @module
 */
import { EdgeMoeError } from "../errors.ts";
import { PRE_TOKENIZERS } from "./pretokenize.ts";
import { EOG_TEXTS, type TokenizerSpec } from "./spec.ts";
import { MAX_VOCAB, VocabTokenizer } from "./tokenizer.ts";

/**
 * GGUF metadata by key (e.g. `"tokenizer.ggml.tokens"`), as a `Map` or a plain
 * object; only the `tokenizer.ggml.*` keys are read. Values are what a GGUF
 * reader returns: strings, numbers or bigints, booleans, and arrays of them
 * (plain or typed); each is type-checked here.
 */
export type GgufTokenizerMetadata = ReadonlyMap<string, unknown> | Readonly<Record<string, unknown>>;

const OP = "read GGUF tokenizer";

function get(meta: GgufTokenizerMetadata, key: string): unknown {
  return meta instanceof Map ? meta.get(key) : (meta as Record<string, unknown>)[key];
}

function wrongType(key: string, expected: string, found: unknown): EdgeMoeError {
  const what = found === undefined ? "nothing" : Array.isArray(found) ? "an array" : typeof found;
  return new EdgeMoeError("corrupt_data", OP, `${key}: expected ${expected}, found ${what}`);
}

function str(meta: GgufTokenizerMetadata, key: string): string | undefined {
  const v = get(meta, key);
  if (v === undefined || typeof v === "string") return v;
  throw wrongType(key, "a string", v);
}

function int(meta: GgufTokenizerMetadata, key: string): number | undefined {
  const v = get(meta, key);
  if (v === undefined) return undefined;
  const n = typeof v === "bigint" ? Number(v) : v;
  if (typeof n === "number" && Number.isInteger(n)) return n;
  throw wrongType(key, "an integer", v);
}

function bool(meta: GgufTokenizerMetadata, key: string): boolean | undefined {
  const v = get(meta, key);
  if (v === undefined || typeof v === "boolean") return v;
  throw wrongType(key, "a boolean", v);
}

function array<T>(
  meta: GgufTokenizerMetadata,
  key: string,
  check: (x: unknown) => x is T,
  what: string,
): T[] | undefined {
  const v = get(meta, key);
  if (v === undefined) return undefined;
  if (typeof v !== "object" || v === null || typeof (v as ArrayLike<unknown>).length !== "number") {
    throw wrongType(key, `an array of ${what}`, v);
  }
  const a = v as ArrayLike<unknown>;
  if (a.length > MAX_VOCAB * 4) {
    throw new EdgeMoeError("corrupt_data", OP, `${key}: ${a.length} entries exceed the limit of ${MAX_VOCAB * 4}`);
  }
  const out: T[] = new Array(a.length);
  for (let i = 0; i < a.length; i++) {
    const x = typeof a[i] === "bigint" ? Number(a[i]) : a[i];
    if (!check(x)) throw wrongType(`${key}[${i}]`, what, x);
    out[i] = x;
  }
  return out;
}

const isString = (x: unknown): x is string => typeof x === "string";
const isNumber = (x: unknown): x is number => typeof x === "number";

/** Describes the tokenizer of a GGUF file; throws `corrupt_data` or `unsupported` naming the key at fault. */
export function specFromGguf(meta: GgufTokenizerMetadata): TokenizerSpec {
  const model = str(meta, "tokenizer.ggml.model");
  const tokens = array(meta, "tokenizer.ggml.tokens", isString, "strings");
  if (model === undefined || tokens === undefined) {
    throw new EdgeMoeError(
      "corrupt_data",
      OP,
      `the file has no tokenizer: tokenizer.ggml.${model === undefined ? "model" : "tokens"} is missing`,
    );
  }
  const types = array(meta, "tokenizer.ggml.token_type", isNumber, "integers") ?? tokens.map(() => 1);
  // llama.cpp makes end-of-generation texts control tokens whatever type the file gives them.
  const lastId = new Map(tokens.map((t, i) => [t, i]));
  for (const text of EOG_TEXTS) {
    const id = lastId.get(text);
    if (id !== undefined && id < types.length) types[id] = 3;
  }
  const eog = ["eot", "eom"].map((k) => int(meta, `tokenizer.ggml.${k}_token_id`)).filter((x) => x !== undefined);
  const common = {
    tokens,
    types,
    eogIds: eog,
    addEos: bool(meta, "tokenizer.ggml.add_eos_token") ?? false,
  };
  if (model === "gpt2") {
    const pre = str(meta, "tokenizer.ggml.pre") ?? "default";
    const known = Object.hasOwn(PRE_TOKENIZERS, pre) ? PRE_TOKENIZERS[pre] : undefined;
    if (known === undefined) {
      throw new EdgeMoeError(
        "unsupported",
        OP,
        `tokenizer.ggml.pre = "${pre}" is not supported; supported: ${Object.keys(PRE_TOKENIZERS).join(", ")}`,
      );
    }
    const merges = array(meta, "tokenizer.ggml.merges", isString, "strings");
    if (merges === undefined) throw wrongType("tokenizer.ggml.merges", "an array of strings", undefined);
    return {
      ...common,
      model: "bpe",
      byteLevel: true,
      merges,
      preTokenizer: known.regexes,
      ignoreMerges: known.ignoreMerges,
      bosId: int(meta, "tokenizer.ggml.bos_token_id"),
      eosId: int(meta, "tokenizer.ggml.eos_token_id"),
      unkId: int(meta, "tokenizer.ggml.unknown_token_id"),
      addBos: bool(meta, "tokenizer.ggml.add_bos_token") ?? known.addBosDefault,
    };
  }
  if (model === "llama") {
    const scores = array(meta, "tokenizer.ggml.scores", isNumber, "numbers");
    if (scores === undefined) throw wrongType("tokenizer.ggml.scores", "an array of numbers", undefined);
    return {
      ...common,
      model: "spm",
      byteLevel: false,
      scores,
      byteFallback: true,
      spaceMarker: true,
      addSpacePrefix: bool(meta, "tokenizer.ggml.add_space_prefix") ?? true,
      bosId: int(meta, "tokenizer.ggml.bos_token_id") ?? 1,
      eosId: int(meta, "tokenizer.ggml.eos_token_id") ?? 2,
      unkId: int(meta, "tokenizer.ggml.unknown_token_id") ?? 0,
      addBos: bool(meta, "tokenizer.ggml.add_bos_token") ?? true,
    };
  }
  throw new EdgeMoeError(
    "unsupported",
    OP,
    `tokenizer.ggml.model = "${model}" is not supported; supported: "gpt2" (byte-level BPE), "llama" (SentencePiece)`,
  );
}

/**
 * Builds the tokenizer of a GGUF file from its metadata.
 *
 * @example
 * ```ts
 * import { tokenizerFromGguf } from "@edgemoe/edgemoe";
 * const tok = tokenizerFromGguf({
 *   "tokenizer.ggml.model": "llama",
 *   "tokenizer.ggml.tokens": ["<unk>", "<s>", "</s>", "\u2581", "a"],
 *   "tokenizer.ggml.scores": [0, 0, 0, -1, -2],
 *   "tokenizer.ggml.token_type": [2, 3, 3, 1, 1],
 * });
 * tok.encode("a"); // [1, 3, 4]
 * ```
 */
export function tokenizerFromGguf(meta: GgufTokenizerMetadata): VocabTokenizer {
  return new VocabTokenizer(specFromGguf(meta));
}

/**
 * An open GGUF file as far as the tokenizer needs it: its metadata, each value
 * with its GGUF type (what `GgufFile` from the gguf module provides).
 */
export interface GgufMetadataSource {
  /** Metadata values by key. */
  readonly metadata: ReadonlyMap<string, { readonly value: unknown }>;
}

/**
 * Builds the tokenizer of an open GGUF file.
 *
 * @example
 * ```ts
 * import { GgufFile, tokenizerFromGgufFile } from "@edgemoe/edgemoe";
 * using file = GgufFile.open("model.gguf");
 * const tok = tokenizerFromGgufFile(file);
 * console.log(tok.decode(tok.encode("Hello")));
 * ```
 */
export function tokenizerFromGgufFile(file: GgufMetadataSource): VocabTokenizer {
  const meta = new Map<string, unknown>();
  for (const [key, v] of file.metadata) if (key.startsWith("tokenizer.ggml.")) meta.set(key, v.value);
  return tokenizerFromGguf(meta);
}
