/**
 * Tokenizers from Hugging Face `tokenizer.json` (+ `tokenizer_config.json`):
 * BPE models with a byte-level pre-tokenizer (GPT-2, Qwen2/3, Llama 3,
 * OLMoE) or SentencePiece-style normalization with byte fallback (Llama 2,
 * Mistral). Anything else is refused with an `unsupported` error naming it.
 *
 * @module
 */
import { EdgeMoeError } from "../errors.ts";
import { GPT2_REGEX } from "./pretokenize.ts";
import type { TokenizerSpec } from "./spec.ts";
import { MAX_VOCAB, VocabTokenizer } from "./tokenizer.ts";

const OP = "read tokenizer.json";
type Json = Record<string, unknown>;

function corrupt(detail: string): EdgeMoeError {
  return new EdgeMoeError("corrupt_data", OP, detail);
}

function unsupported(detail: string): EdgeMoeError {
  return new EdgeMoeError("unsupported", OP, detail);
}

function obj(v: unknown, where: string): Json {
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw corrupt(
      `${where}: expected an object, found ${Array.isArray(v) ? "an array" : v === null ? "null" : typeof v}`,
    );
  }
  return v as Json;
}

function list(v: unknown, where: string): unknown[] {
  if (!Array.isArray(v)) throw corrupt(`${where}: expected an array, found ${v === null ? "null" : typeof v}`);
  return v;
}

/** A special token in tokenizer_config.json: a string, `{ content }`, or null. */
function tokenName(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (typeof v === "object" && v !== null && typeof (v as Json).content === "string") {
    return (v as Json).content as string;
  }
  return undefined;
}

interface PreTokenization {
  byteLevel: boolean;
  regexes: string[];
  /** Hugging Face's Metaspace pre-tokenizer: when it prepends ▁, and whether it splits words at ▁. */
  metaspace?: { prepend: "always" | "first" | "never"; split: boolean };
}

function preTokenizer(v: unknown): PreTokenization {
  const result: PreTokenization = { byteLevel: false, regexes: [] };
  if (v === null || v === undefined) return result;
  const p = obj(v, "pre_tokenizer");
  const steps = p.type === "Sequence" ? list(p.pretokenizers, "pre_tokenizer.pretokenizers") : [p];
  for (const [i, s] of steps.entries()) {
    const step = obj(s, `pre_tokenizer step ${i}`);
    if (step.type === "ByteLevel") {
      if (step.add_prefix_space === true) unsupportedStep(step, "add_prefix_space = true");
      result.byteLevel = true;
      if (step.use_regex !== false) result.regexes.push(GPT2_REGEX);
    } else if (step.type === "Split") {
      const pattern = obj(step.pattern, `pre_tokenizer step ${i} pattern`);
      if (typeof pattern.Regex !== "string") unsupportedStep(step, "a non-regex pattern");
      if (step.behavior !== "Isolated" || step.invert === true) unsupportedStep(step, `behavior ${step.behavior}`);
      result.regexes.push(pattern.Regex as string);
    } else if (step.type === "Metaspace") {
      if (step.replacement !== "\u2581") unsupportedStep(step, `replacement ${JSON.stringify(step.replacement)}`);
      const scheme = step.prepend_scheme ?? (step.add_prefix_space === false ? "never" : "always");
      if (scheme !== "always" && scheme !== "first" && scheme !== "never") {
        unsupportedStep(step, `prepend_scheme ${JSON.stringify(scheme)}`);
      }
      result.metaspace = { prepend: scheme as "always" | "first" | "never", split: step.split !== false };
    } else unsupportedStep(step, "this type");
  }
  return result;
}

function unsupportedStep(step: Json, what: string): never {
  throw unsupported(`pre_tokenizer ${step.type} with ${what} is not supported`);
}

/** The normalizers we follow: none, NFC, or SentencePiece's prepend-▁ + replace-space-with-▁. */
function normalizer(v: unknown): { nfc: boolean; spaceMarker: boolean } {
  if (v === null || v === undefined) return { nfc: false, spaceMarker: false };
  const n = obj(v, "normalizer");
  if (n.type === "NFC") return { nfc: true, spaceMarker: false };
  const steps = n.type === "Sequence"
    ? list(n.normalizers, "normalizer.normalizers").map((s) => obj(s, "normalizer"))
    : [n];
  const kinds = steps.map((s) =>
    s.type === "Prepend" && s.prepend === "\u2581"
      ? "prepend"
      : s.type === "Replace" && obj(s.pattern, "normalizer pattern").String === " " && s.content === "\u2581"
      ? "replace"
      : JSON.stringify(s)
  );
  if (kinds.length === 2 && kinds[0] === "prepend" && kinds[1] === "replace") return { nfc: false, spaceMarker: true };
  throw unsupported(`normalizer ${JSON.stringify(n).slice(0, 200)} is not supported`);
}

/**
 * Describes the tokenizer of a tokenizer.json (parsed), with the special
 * tokens and BOS/EOS flags of tokenizer_config.json when given.
 */
export function specFromHf(tokenizerJson: unknown, tokenizerConfig?: unknown): TokenizerSpec {
  const root = obj(tokenizerJson, "tokenizer.json");
  const config = tokenizerConfig === undefined ? {} : obj(tokenizerConfig, "tokenizer_config.json");
  const model = obj(root.model, "model");
  if (model.type !== "BPE") throw unsupported(`model type ${JSON.stringify(model.type)}: only BPE is supported`);
  for (const key of ["continuing_subword_prefix", "end_of_word_suffix"]) {
    if (model[key] !== null && model[key] !== undefined && model[key] !== "") {
      throw unsupported(`BPE ${key} = ${JSON.stringify(model[key])}`);
    }
  }
  if (model.dropout !== null && model.dropout !== undefined) throw unsupported("BPE dropout");

  const vocab = obj(model.vocab, "model.vocab");
  const added = list(root.added_tokens ?? [], "added_tokens").map((a, i) => obj(a, `added_tokens[${i}]`));
  const entries: [string, number][] = Object.entries(vocab).map(([text, id]) => [text, id as number]);
  for (const [i, a] of added.entries()) {
    if (typeof a.content !== "string") throw corrupt(`added_tokens[${i}].content is ${typeof a.content}`);
    for (const flag of ["lstrip", "rstrip", "single_word"]) {
      if (a[flag] === true) throw unsupported(`added token ${JSON.stringify(a.content)} has ${flag} = true`);
    }
    entries.push([a.content, a.id as number]);
  }
  let size = 0;
  for (const [text, id] of entries) {
    if (!Number.isInteger(id) || id < 0 || id >= MAX_VOCAB) {
      throw corrupt(
        `token ${JSON.stringify(text)} has id ${JSON.stringify(id)}, expected an integer 0 to ${MAX_VOCAB - 1}`,
      );
    }
    size = Math.max(size, id + 1);
  }
  const tokens: (string | undefined)[] = new Array(size);
  for (const [text, id] of entries) {
    if (tokens[id] !== undefined && tokens[id] !== text) {
      throw corrupt(`id ${id} is both ${JSON.stringify(tokens[id])} and ${JSON.stringify(text)}`);
    }
    tokens[id] = text;
  }
  const gap = tokens.findIndex((t) => t === undefined);
  if (gap >= 0) throw corrupt(`no token has id ${gap} (ids run to ${size - 1})`);

  const types = new Uint8Array(size).fill(1);
  const byteFallback = model.byte_fallback === true;
  if (byteFallback) {
    tokens.forEach((t, id) => {
      if (/^<0x[0-9A-F]{2}>$/.test(t!)) types[id] = 6;
    });
  }
  for (const a of added) types[a.id as number] = a.special === true ? 3 : 4;
  const unk = typeof model.unk_token === "string" && Object.hasOwn(vocab, model.unk_token)
    ? vocab[model.unk_token] as number
    : undefined;
  if (unk !== undefined) types[unk] = 2;

  const pre = preTokenizer(root.pre_tokenizer);
  const norm = normalizer(root.normalizer);
  if (pre.byteLevel === (norm.spaceMarker || pre.metaspace !== undefined)) {
    throw unsupported("expected either a ByteLevel pre-tokenizer or SentencePiece-style ▁ spaces, not both or neither");
  }
  if (norm.nfc && !pre.byteLevel) throw unsupported("NFC normalization without a ByteLevel pre-tokenizer");

  const idOf = (name: string | undefined, key: string): number | undefined => {
    if (name === undefined) return undefined;
    const id = tokens.indexOf(name);
    if (id < 0) throw corrupt(`tokenizer_config.json ${key} ${JSON.stringify(name)} is not in the vocabulary`);
    return id;
  };
  const template = processorTemplate(root.post_processor);
  const bosId = idOf(tokenName(config.bos_token) ?? template.before, "bos_token");
  const eosId = idOf(tokenName(config.eos_token) ?? template.after, "eos_token");
  return {
    model: "bpe",
    tokens: tokens as string[],
    types,
    merges: list(model.merges, "model.merges") as (string | [string, string])[],
    byteLevel: pre.byteLevel,
    preTokenizer: pre.regexes,
    ignoreMerges: model.ignore_merges === true,
    byteFallback,
    fuseUnknown: model.fuse_unk === true,
    spaceMarker: !pre.byteLevel,
    addSpacePrefix: norm.spaceMarker || (pre.metaspace !== undefined && pre.metaspace.prepend !== "never"),
    prefixOnlyAtStart: pre.metaspace?.prepend === "first",
    prefixUnlessSpace: pre.metaspace !== undefined,
    splitAtSpaceMarker: pre.metaspace?.split === true,
    normalizeNfc: norm.nfc,
    unkId: unk,
    bosId,
    eosId,
    addBos: typeof config.add_bos_token === "boolean" ? config.add_bos_token : template.before !== undefined,
    addEos: typeof config.add_eos_token === "boolean" ? config.add_eos_token : template.after !== undefined,
  };
}

/** The special tokens a TemplateProcessing post-processor puts before and after a single sequence. */
function processorTemplate(v: unknown): { before?: string; after?: string } {
  if (v === null || v === undefined) return {};
  const p = obj(v, "post_processor");
  const processors = p.type === "Sequence" ? list(p.processors, "post_processor.processors") : [p];
  for (const q of processors) {
    const proc = obj(q, "post_processor");
    if (proc.type !== "TemplateProcessing") continue;
    const single = list(proc.single, "post_processor.single").map((x) => obj(x, "post_processor.single"));
    const seq = single.findIndex((x) => x.Sequence !== undefined);
    const special = (x: Json | undefined) =>
      x?.SpecialToken === undefined ? undefined : obj(x.SpecialToken, "SpecialToken").id as string;
    return { before: seq > 0 ? special(single[seq - 1]) : undefined, after: special(single[seq + 1]) };
  }
  return {};
}

/**
 * Builds a tokenizer from a parsed tokenizer.json and, optionally, its
 * tokenizer_config.json (for BOS/EOS and whether to add them).
 *
 * @example
 * ```ts
 * import { tokenizerFromHf } from "@edgemoe/edgemoe";
 * const dir = "path/to/model";
 * const tok = tokenizerFromHf(
 *   JSON.parse(await Deno.readTextFile(`${dir}/tokenizer.json`)),
 *   JSON.parse(await Deno.readTextFile(`${dir}/tokenizer_config.json`)),
 * );
 * console.log(tok.encode("Hello world"));
 * ```
 */
export function tokenizerFromHf(tokenizerJson: unknown, tokenizerConfig?: unknown): VocabTokenizer {
  return new VocabTokenizer(specFromHf(tokenizerJson, tokenizerConfig));
}
