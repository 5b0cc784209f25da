/**
 * Tokenizers: byte-level BPE and SentencePiece-style BPE, built from GGUF
 * metadata or a Hugging Face tokenizer.json.
 *
 * @module
 */
export { VocabTokenizer } from "./tokenizer.ts";
export type { TokenizerSpec } from "./spec.ts";
export { specFromGguf, tokenizerFromGguf, tokenizerFromGgufFile } from "./gguf.ts";
export type { GgufMetadataSource, GgufTokenizerMetadata } from "./gguf.ts";
export { specFromHf, tokenizerFromHf } from "./hf.ts";
