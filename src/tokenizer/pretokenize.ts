/**
 * Pre-tokenization for byte-level BPE: regexes that cut text into words
 * before merges run, named as GGUF's `tokenizer.ggml.pre` names them and
 * written as Hugging Face's tokenizer.json writes them.
 *
 * @module
 */
import { EdgeMoeError } from "../errors.ts";

/** GPT-2's regex (also OLMo / OLMoE, and the `ByteLevel` pre-tokenizer with `use_regex`). */
export const GPT2_REGEX = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/** Llama 3's regex: case-insensitive contractions, digits in groups of up to three. */
export const LLAMA3_REGEX = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}|" +
  " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** Qwen2's (and Qwen3's) regex: as Llama 3's but one digit per word. */
export const QWEN2_REGEX = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}|" +
  " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** How llama.cpp treats one `tokenizer.ggml.pre` value (src/llama-vocab.cpp). */
export interface GgufPreTokenizer {
  /** Regexes, applied in order. */
  readonly regexes: readonly string[];
  /** Whole words found in the vocabulary skip merging. */
  readonly ignoreMerges: boolean;
  /** BOS is added when the file has no `tokenizer.ggml.add_bos_token`. */
  readonly addBosDefault: boolean;
}

const gpt2: GgufPreTokenizer = { regexes: [GPT2_REGEX], ignoreMerges: false, addBosDefault: false };
const qwen2: GgufPreTokenizer = { regexes: [QWEN2_REGEX], ignoreMerges: false, addBosDefault: false };
const llama3: GgufPreTokenizer = { regexes: [LLAMA3_REGEX], ignoreMerges: true, addBosDefault: true };
const llama3Regex: GgufPreTokenizer = { regexes: [LLAMA3_REGEX], ignoreMerges: false, addBosDefault: false };

/** The `tokenizer.ggml.pre` values supported, with llama.cpp's names. */
export const PRE_TOKENIZERS: Readonly<Record<string, GgufPreTokenizer>> = {
  "gpt-2": gpt2,
  "phi-2": gpt2,
  "mpt": gpt2,
  "olmo": gpt2,
  "jais": gpt2,
  "roberta-bpe": gpt2,
  "qwen2": qwen2,
  "deepseek-r1-qwen": qwen2,
  "stablelm2": qwen2,
  "llama3": llama3,
  "llama-v3": llama3,
  "llama-bpe": llama3,
  "falcon3": llama3,
  "pixtral": llama3,
  "dbrx": llama3Regex,
  "smaug-bpe": llama3Regex,
};

/**
 * Unicode White_Space, which is what `\s` means to the regex engines of
 * Hugging Face tokenizers and llama.cpp. JavaScript's `\s` differs: it lacks
 * U+0085 and adds U+FEFF.
 */
const WHITE_SPACE = "\\t-\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";

/** Rewrites a tokenizer.json (Oniguruma) regex for JavaScript's `u` mode; throws `unsupported` if it cannot. */
export function compilePattern(source: string, where: string): RegExp {
  let out = "";
  let inClass = false;
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if (c === "\\" && i + 1 < source.length) {
      const e = source[i + 1];
      i++;
      if (e === "s") out += inClass ? WHITE_SPACE : `[${WHITE_SPACE}]`;
      else if (e === "S" && !inClass) out += `[^${WHITE_SPACE}]`;
      else if (e === "S") throw new EdgeMoeError("unsupported", where, `\\S inside a character class in /${source}/`);
      else out += c + e;
      continue;
    }
    if (c === "[" && !inClass) inClass = true;
    else if (c === "]" && inClass) inClass = false;
    out += c;
  }
  try {
    return new RegExp(out, "gu");
  } catch (cause) {
    throw new EdgeMoeError("unsupported", where, `pre-tokenizer regex /${source}/ is not supported here`, { cause });
  }
}

/**
 * Cuts text into words: each regex splits every piece of the previous one;
 * matches and the text between them both become words (Hugging Face's
 * "isolated" split behaviour).
 */
export class PreTokenizer {
  readonly #regexes: RegExp[];

  /** @param patterns regexes in tokenizer.json syntax, applied in order */
  constructor(patterns: readonly string[], where: string) {
    this.#regexes = patterns.map((p) => compilePattern(p, where));
  }

  /** Calls `emit(source, start, end)` for each word `source[start, end)` of `text`, in order. */
  split(text: string, emit: (source: string, start: number, end: number) => void): void {
    this.#splitWith(0, text, emit);
  }

  #splitWith(level: number, text: string, emit: (source: string, start: number, end: number) => void): void {
    if (level === this.#regexes.length) {
      emit(text, 0, text.length);
      return;
    }
    const re = this.#regexes[level];
    const last = level + 1 === this.#regexes.length;
    // The last regex emits ranges of `text` itself; earlier ones hand substrings to the next regex.
    const next = (start: number, end: number) =>
      last ? emit(text, start, end) : this.#splitWith(level + 1, text.slice(start, end), emit);
    re.lastIndex = 0;
    let done = 0;
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      const len = m[0].length;
      if (len === 0) {
        re.lastIndex++;
        continue;
      }
      if (m.index > done) next(done, m.index);
      next(m.index, m.index + len);
      done = m.index + len;
    }
    if (done < text.length) next(done, text.length);
  }
}
