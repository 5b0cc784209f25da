/**
 * `tokenizer.json` (+ `tokenizer_config.json`) → GGUF tokenizer metadata, as
 * llama.cpp's converter writes it for the supported models:
 *
 * - byte-level BPE (Qwen2-MoE, Qwen3-MoE, OLMoE): `tokenizer.ggml.model = "gpt2"`,
 *   tokens, token types and merges; `tokenizer.ggml.pre` names the
 *   pre-tokenizer llama.cpp should use ("qwen2", "olmo");
 * - SentencePiece-style BPE with byte fallback (Mixtral): `"llama"`, tokens,
 *   scores (higher for lower ids, the SentencePiece order) and types (BYTE for
 *   `<0xNN>` pieces).
 *
 * The tokenizer itself is read by the tokenizer module (`specFromHf`, which
 * refuses what edgemoe cannot run); here it is laid out as llama.cpp expects:
 * ids from the tokenizer's size up to config.json's `vocab_size` become
 * `[PADn]` (UNUSED), added tokens that look special (`<|…|>`) are CONTROL, and
 * BOS/EOS fall back to config.json's `bos_token_id` / `eos_token_id`.
 *
 * @module
 */
import { EdgeMoeError } from "../errors.ts";
import type { GgufValue } from "../gguf/types.ts";
import { parseStrictJson } from "../safetensors/json.ts";
import { specFromHf } from "../tokenizer/hf.ts";
import type { HfModelConfig } from "./config.ts";

/** llama.cpp's token types (`llama_token_type`). */
export const TokenType = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

const PRE_BY_ARCH: Record<HfModelConfig["arch"], string> = {
  llama: "default",
  qwen2moe: "qwen2",
  qwen3moe: "qwen2",
  olmoe: "olmo",
};

/** Parses JSON text strictly (duplicate keys refused), returning plain objects. */
function parseJsonFile(text: string, path: string): unknown {
  parseStrictJson(text, `read ${path}`);
  return JSON.parse(text);
}

/** Added tokens that llama.cpp's converter treats as control tokens even when not marked special. */
function looksSpecial(t: string): boolean {
  return (t.startsWith("<|") && t.endsWith("|>")) || (t.startsWith("<｜") && t.endsWith("｜>")) ||
    ["<pad>", "<mask>"].includes(t);
}

/** A token named in tokenizer_config.json: a string, or an AddedToken object with `content`. */
function tokenContent(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (typeof v === "object" && v !== null && typeof (v as { content?: unknown }).content === "string") {
    return (v as { content: string }).content;
  }
  return undefined;
}

/**
 * The GGUF tokenizer metadata for a model.
 *
 * @param cfg the model's config (architecture, vocab size, fallback special ids)
 * @param tokenizerJson tokenizer.json text
 * @param tokenizerConfigJson tokenizer_config.json text, if the file exists
 * @param where the directory, for errors
 * @throws {EdgeMoeError} `corrupt_data` for a malformed file or ids out of range,
 * `unsupported` for a tokenizer the architecture does not use or edgemoe cannot run.
 */
export function tokenizerMetadata(
  cfg: HfModelConfig,
  tokenizerJson: string,
  tokenizerConfigJson: string | undefined,
  where: string,
): [string, GgufValue][] {
  const tjPath = `${where}/tokenizer.json`;
  const tj = parseJsonFile(tokenizerJson, tjPath);
  const tc = tokenizerConfigJson === undefined
    ? undefined
    : parseJsonFile(tokenizerConfigJson, `${where}/tokenizer_config.json`);
  let spec;
  try {
    spec = specFromHf(tj, tc);
  } catch (e) {
    if (!(e instanceof EdgeMoeError)) throw e;
    const detail = e.message.startsWith(`${e.op}: `) ? e.message.slice(e.op.length + 2) : e.message;
    throw new EdgeMoeError(e.code, `read ${tjPath}`, detail, { cause: e });
  }
  const op = `read ${tjPath}`;
  const spm = cfg.arch === "llama";
  if (spm === spec.byteLevel) {
    throw new EdgeMoeError(
      "unsupported",
      op,
      spm
        ? `${cfg.hfArch} needs a SentencePiece-style BPE with byte fallback, found a byte-level BPE`
        : `${cfg.hfArch} needs a byte-level BPE, found a SentencePiece-style one`,
    );
  }
  const n = cfg.vocabSize;
  if (spec.tokens.length > n) {
    throw new EdgeMoeError(
      "corrupt_data",
      op,
      `the tokenizer has ${spec.tokens.length} tokens, more than config.json's vocab_size ${n}`,
    );
  }
  const texts: string[] = new Array(n);
  const types = new Int32Array(n);
  const scores = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    if (i >= spec.tokens.length) {
      texts[i] = `[PAD${i}]`;
      types[i] = TokenType.UNUSED;
      continue;
    }
    texts[i] = spec.tokens[i];
    types[i] = spec.types?.[i] ?? TokenType.NORMAL;
    if (types[i] === TokenType.USER_DEFINED && looksSpecial(texts[i])) types[i] = TokenType.CONTROL;
    if (spm && types[i] === TokenType.NORMAL) scores[i] = -i;
  }
  const special: [string, number | undefined][] = [
    ["bos_token_id", spec.bosId ?? cfg.bosTokenId],
    ["eos_token_id", spec.eosId ?? cfg.eosTokenId],
    ["unknown_token_id", spec.unkId],
  ];
  const cfgObj = (typeof tc === "object" && tc !== null ? tc : {}) as Record<string, unknown>;
  const pad = tokenContent(cfgObj.pad_token);
  if (pad !== undefined) special.push(["padding_token_id", spec.tokens.indexOf(pad)]);

  const kv: [string, GgufValue][] = [
    ["tokenizer.ggml.model", { type: "string", value: spm ? "llama" : "gpt2" }],
    ["tokenizer.ggml.pre", { type: "string", value: PRE_BY_ARCH[cfg.arch] }],
    ["tokenizer.ggml.tokens", { type: "array", itemType: "string", value: texts }],
  ];
  if (spm) kv.push(["tokenizer.ggml.scores", { type: "array", itemType: "f32", value: scores }]);
  kv.push(["tokenizer.ggml.token_type", { type: "array", itemType: "i32", value: types }]);
  if (!spm) {
    const merges = (spec.merges ?? []).map((m, i) => {
      if (typeof m === "string" && m.split(" ").length === 2) return m;
      if (Array.isArray(m) && m.length === 2 && typeof m[0] === "string" && typeof m[1] === "string") {
        return `${m[0]} ${m[1]}`;
      }
      throw new EdgeMoeError(
        "corrupt_data",
        op,
        `merges[${i}] must be "a b" or ["a", "b"], found ${JSON.stringify(m)}`,
      );
    });
    kv.push(["tokenizer.ggml.merges", { type: "array", itemType: "string", value: merges }]);
  }
  for (const [key, id] of special) {
    if (id === undefined || id < 0) continue;
    if (id >= n) throw new EdgeMoeError("corrupt_data", op, `${key} ${id} is outside the vocabulary of ${n}`);
    kv.push([`tokenizer.ggml.${key}`, { type: "u32", value: id }]);
  }
  kv.push(["tokenizer.ggml.add_bos_token", { type: "bool", value: spec.addBos }]);
  kv.push(["tokenizer.ggml.add_eos_token", { type: "bool", value: spec.addEos }]);
  const tmpl = cfgObj.chat_template;
  const template = typeof tmpl === "string"
    ? tmpl
    : Array.isArray(tmpl)
    ? tmpl.find((t) => t?.name === "default" && typeof t.template === "string")?.template
    : undefined;
  if (typeof template === "string") kv.push(["tokenizer.chat_template", { type: "string", value: template }]);
  return kv;
}
