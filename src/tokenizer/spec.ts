/**
 * The plain description a tokenizer is built from. GGUF metadata and
 * tokenizer.json are each turned into one of these (gguf.ts, hf.ts), so the
 * tokenizer itself knows neither format.
 *
 * @module
 */

/**
 * Texts of end-of-generation tokens (llama.cpp's list, src/llama-vocab.cpp, without the gpt-oss and
 * solar-open entries): a control token with one of these texts ends a generation.
 */
export const EOG_TEXTS: ReadonlySet<string> = new Set([
  "<|eot_id|>",
  "<|im_end|>",
  "<|end|>",
  "<end_of_turn>",
  "<|endoftext|>",
  "</s>",
  "<|eom_id|>",
  "<EOT>",
  "_<EOT>",
  "[EOT]",
  "[EOS]",
  "<|end_of_text|>",
  "<end_of_utterance>",
  "<eos>",
  "<\uff5cend\u2581of\u2581sentence\uff5c>",
]);

/** A vocabulary and the rules for using it. */
export interface TokenizerSpec {
  /**
   * `"bpe"`: merges applied by rank (GPT-2/Qwen/Llama-3 byte-level, or Hugging Face's SentencePiece-style BPE
   * with byte fallback). `"spm"`: llama.cpp's SentencePiece BPE, which merges the adjacent pair whose result has
   * the highest score (GGUF `tokenizer.ggml.model = "llama"`).
   */
  model: "bpe" | "spm";
  /** Vocabulary entries by id. */
  tokens: readonly string[];
  /** GGUF token types by id (1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte); default all 1. */
  types?: ArrayLike<number>;
  /** `"bpe"` only: merges in rank order, each `"left right"` or `[left, right]`. */
  merges?: readonly (string | readonly [string, string])[];
  /** `"spm"` only: one score per token. */
  scores?: ArrayLike<number>;
  /** `"bpe"` only: symbols are bytes in GPT-2's byte alphabet (true) or Unicode characters (false). */
  byteLevel: boolean;
  /** Byte-level only: pre-tokenizer regexes (tokenizer.json syntax), applied in order. */
  preTokenizer?: readonly string[];
  /** A word that is a whole vocabulary entry is emitted as is, without merging (Llama 3). */
  ignoreMerges?: boolean;
  /** Characters not in the vocabulary become `<0xNN>` byte tokens (else the unknown token). */
  byteFallback?: boolean;
  /** Spaces are written `▁` (U+2581) in the vocabulary (SentencePiece). */
  spaceMarker?: boolean;
  /** With `spaceMarker`: a space is prepended to text at the start and after each special token. */
  addSpacePrefix?: boolean;
  /** With `addSpacePrefix`: only the text at the very start of the input gets one (Metaspace `"first"`). */
  prefixOnlyAtStart?: boolean;
  /** With `addSpacePrefix`: text that already starts with a space gets none (Hugging Face's Metaspace). */
  prefixUnlessSpace?: boolean;
  /** With `spaceMarker`: every `▁` starts a new word and merges never cross it (Metaspace `split`). */
  splitAtSpaceMarker?: boolean;
  /** Text is put in Unicode NFC before tokenization (Qwen2's tokenizer.json; llama.cpp does not). */
  normalizeNfc?: boolean;
  /** Consecutive unknown tokens become one. */
  fuseUnknown?: boolean;
  /** Beginning-of-sequence id. */
  bosId?: number;
  /** End-of-sequence id. */
  eosId?: number;
  /** Unknown-token id. */
  unkId?: number;
  /** Further end-of-generation ids (end of turn, end of message). */
  eogIds?: readonly number[];
  /** `encode` with `addSpecial` prepends BOS. */
  addBos: boolean;
  /** `encode` with `addSpecial` appends EOS. */
  addEos: boolean;
}
