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
 * Ids missing from the vocabulary up to `vocab_size` become `[PADn]` (UNUSED).
 * Special token ids come from tokenizer_config.json's `*_token` entries (looked
 * up among the added tokens), else from config.json's `*_token_id`.
 *
 * @module
 */
import { EdgeMoeError } from "../errors.ts";
import type { GgufValue } from "../gguf/types.ts";
import { isJsonObject, type JsonObject, type JsonValue, parseStrictJson } from "../safetensors/json.ts";
import type { HfModelConfig } from "./config.ts";

/** llama.cpp's token types (`llama_token_type`). */
export const TokenType = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

const PRE_BY_ARCH: Record<HfModelConfig["arch"], string> = {
  llama: "default",
  qwen2moe: "qwen2",
  qwen3moe: "qwen2",
  olmoe: "olmo",
};

interface AddedToken {
  id: number;
  content: string;
  special: boolean;
}

function corrupt(where: string, detail: string): never {
  throw new EdgeMoeError("corrupt_data", `read ${where}`, detail);
}

/** A token named in tokenizer_config.json: a string, or an AddedToken object with `content`. */
function tokenContent(v: JsonValue | undefined): string | undefined {
  if (typeof v === "string") return v;
  if (isJsonObject(v) && typeof v.get("content") === "string") return v.get("content") as string;
  return undefined;
}

function looksSpecial(t: string): boolean {
  return (t.startsWith("<|") && t.endsWith("|>")) || (t.startsWith("<｜") && t.endsWith("｜>")) ||
    ["<pad>", "<mask>"].includes(t);
}

/**
 * The GGUF tokenizer metadata for a model.
 *
 * @param cfg the model's config (architecture, vocab size, fallback special ids)
 * @param tokenizerJson tokenizer.json text
 * @param tokenizerConfigJson tokenizer_config.json text, if the file exists
 * @param where the directory, for errors
 * @throws {EdgeMoeError} `corrupt_data` for a malformed file or ids out of range,
 * `unsupported` for a tokenizer model the architecture does not use.
 */
export function tokenizerMetadata(
  cfg: HfModelConfig,
  tokenizerJson: string,
  tokenizerConfigJson: string | undefined,
  where: string,
): [string, GgufValue][] {
  const tjWhere = `${where}/tokenizer.json`;
  const tj = parseStrictJson(tokenizerJson, `read ${tjWhere}`);
  const model = isJsonObject(tj) ? tj.get("model") : undefined;
  if (!isJsonObject(tj) || !isJsonObject(model)) return corrupt(tjWhere, 'expected an object with a "model" object');
  if (model.get("type") !== "BPE") {
    throw new EdgeMoeError(
      "unsupported",
      `read ${tjWhere}`,
      `tokenizer model ${JSON.stringify(model.get("type"))} is not supported (expected BPE)`,
    );
  }
  const spm = cfg.arch === "llama";
  if (spm !== (model.get("byte_fallback") === true)) {
    throw new EdgeMoeError(
      "unsupported",
      `read ${tjWhere}`,
      spm
        ? `${cfg.hfArch} needs a SentencePiece-style BPE with byte_fallback`
        : `${cfg.hfArch} needs a byte-level BPE, found one with byte_fallback`,
    );
  }
  const n = cfg.vocabSize;
  const tokens: (string | undefined)[] = new Array(n);
  const vocab = model.get("vocab");
  if (!isJsonObject(vocab)) return corrupt(tjWhere, "model.vocab must be an object of token → id");
  const setToken = (id: JsonValue | undefined, text: string, what: string) => {
    if (typeof id !== "number" || !Number.isSafeInteger(id) || id < 0 || id >= n) {
      corrupt(tjWhere, `${what} ${JSON.stringify(text)} has id ${JSON.stringify(id)}, expected 0 ≤ id < ${n}`);
    }
    const prev = tokens[id as number];
    if (prev !== undefined && prev !== text) {
      corrupt(tjWhere, `id ${id} is both ${JSON.stringify(prev)} and ${JSON.stringify(text)}`);
    }
    tokens[id as number] = text;
  };
  for (const [text, id] of vocab) setToken(id, text, "token");
  const added = new Map<number, AddedToken>();
  const addedList = tj.get("added_tokens") ?? [];
  if (!Array.isArray(addedList)) return corrupt(tjWhere, "added_tokens must be an array");
  for (const a of addedList) {
    const content = isJsonObject(a) ? a.get("content") : undefined;
    if (!isJsonObject(a) || typeof content !== "string") return corrupt(tjWhere, "added_tokens entries need content");
    const id = a.get("id");
    setToken(id, content, "added token");
    added.set(id as number, { id: id as number, content, special: a.get("special") === true });
  }

  let cfgObj: JsonObject = new Map();
  if (tokenizerConfigJson !== undefined) {
    const tc = parseStrictJson(tokenizerConfigJson, `read ${where}/tokenizer_config.json`);
    if (!isJsonObject(tc)) return corrupt(`${where}/tokenizer_config.json`, "expected a JSON object");
    cfgObj = tc;
  }
  const idOfAdded = new Map([...added.values()].map((t) => [t.content, t.id]));
  const special = new Map<string, number>();
  const fallback: Record<string, number | undefined> = { bos: cfg.bosTokenId, eos: cfg.eosTokenId };
  for (const kind of ["bos", "eos", "unk", "pad"]) {
    const content = tokenContent(cfgObj.get(`${kind}_token`));
    const fromConfig = content === undefined ? undefined : idOfAdded.get(content) ?? vocab.get(content);
    const id = typeof fromConfig === "number" ? fromConfig : fallback[kind];
    if (id === undefined) continue;
    if (id >= n) corrupt(where, `${kind} token id ${id} is outside the vocabulary of ${n}`);
    special.set(kind, id);
  }
  const specialIds = new Set(special.values());

  const types = new Int32Array(n);
  const scores = new Float32Array(n);
  const texts: string[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const t = tokens[i];
    const a = added.get(i);
    if (t === undefined) {
      texts[i] = `[PAD${i}]`;
      types[i] = TokenType.UNUSED;
      continue;
    }
    texts[i] = t;
    if (a) types[i] = a.special || looksSpecial(t) ? TokenType.CONTROL : TokenType.USER_DEFINED;
    else if (spm && /^<0x[0-9A-Fa-f]{2}>$/.test(t)) types[i] = TokenType.BYTE;
    else types[i] = TokenType.NORMAL;
    if (spm && i === special.get("unk")) types[i] = TokenType.UNKNOWN;
    else if (spm && specialIds.has(i)) types[i] = TokenType.CONTROL;
    if (spm && types[i] === TokenType.NORMAL) scores[i] = -i;
  }

  const kv: [string, GgufValue][] = [
    ["tokenizer.ggml.model", { type: "string", value: spm ? "llama" : "gpt2" }],
    ["tokenizer.ggml.pre", { type: "string", value: PRE_BY_ARCH[cfg.arch] }],
    ["tokenizer.ggml.tokens", { type: "array", itemType: "string", value: texts }],
  ];
  if (spm) kv.push(["tokenizer.ggml.scores", { type: "array", itemType: "f32", value: scores }]);
  kv.push(["tokenizer.ggml.token_type", { type: "array", itemType: "i32", value: types }]);
  if (!spm) {
    const merges = model.get("merges");
    if (!Array.isArray(merges)) return corrupt(tjWhere, "model.merges must be an array");
    const out = merges.map((m, i) => {
      if (typeof m === "string") return m;
      if (Array.isArray(m) && m.length === 2 && typeof m[0] === "string" && typeof m[1] === "string") {
        return `${m[0]} ${m[1]}`;
      }
      return corrupt(tjWhere, `merges[${i}] must be "a b" or ["a", "b"], found ${JSON.stringify(m)}`);
    });
    kv.push(["tokenizer.ggml.merges", { type: "array", itemType: "string", value: out }]);
  }
  const keyOf: Record<string, string> = {
    bos: "bos_token_id",
    eos: "eos_token_id",
    unk: "unknown_token_id",
    pad: "padding_token_id",
  };
  for (const [kind, id] of special) kv.push([`tokenizer.ggml.${keyOf[kind]}`, { type: "u32", value: id }]);
  for (const kind of ["bos", "eos"]) {
    const v = cfgObj.get(`add_${kind}_token`);
    if (typeof v === "boolean") kv.push([`tokenizer.ggml.add_${kind}_token`, { type: "bool", value: v }]);
  }
  const tmpl = cfgObj.get("chat_template");
  const template = typeof tmpl === "string"
    ? tmpl
    : Array.isArray(tmpl)
    ? tmpl.map((t) => isJsonObject(t) && t.get("name") === "default" ? t.get("template") : undefined).find((t) =>
      typeof t === "string"
    )
    : undefined;
  if (typeof template === "string") kv.push(["tokenizer.chat_template", { type: "string", value: template }]);
  return kv;
}
