/**
 * The swappable interfaces of edgemoe (see DESIGN.md "Swappable parts"). Each
 * concept's folder implements one of them; the engine depends only on these.
 *
 * @module
 */

/** What a vocabulary entry is, with GGUF's `tokenizer.ggml.token_type` meaning (1–6). */
export type TokenKind =
  /** An ordinary piece of text (type 1). */
  | "normal"
  /** The unknown token (type 2). */
  | "unknown"
  /** A control token such as BOS, EOS or `<|im_start|>` (type 3): not text, decodes to nothing by default. */
  | "control"
  /** A user-defined token (type 4): always matched in input text, decodes to its text. */
  | "user_defined"
  /** An unused slot (type 5). */
  | "unused"
  /** A byte-fallback token `<0xNN>` standing for one raw byte (type 6). */
  | "byte";

/** Options of {@linkcode Tokenizer.encode}. */
export interface EncodeOptions {
  /** Add BOS and/or EOS as the model's metadata asks (`add_bos_token`, `add_eos_token`). Default `true`. */
  addSpecial?: boolean;
  /**
   * Recognise control tokens written in the text (`"<|im_start|>"` → its id), as chat templates need. Default
   * `false`: their text is tokenized as ordinary text. User-defined tokens are recognised either way.
   */
  parseSpecial?: boolean;
}

/** Options of {@linkcode Tokenizer.decode} and {@linkcode Tokenizer.createStreamDecoder}. */
export interface DecodeOptions {
  /** Render control and unknown tokens as their text. Default `false`: control tokens decode to nothing. */
  renderSpecial?: boolean;
}

/**
 * Turns generated ids into text one id at a time. Bytes that do not yet form a
 * whole UTF-8 character are held back until the ids that complete them arrive,
 * so no chunk ever ends in half a character.
 */
export interface StreamDecoder {
  /** Adds one id and returns the text that became complete (possibly `""`). */
  push(id: number): string;
  /** Returns what is still held back (an incomplete sequence becomes U+FFFD) and resets. */
  flush(): string;
}

/**
 * A tokenizer: text ↔ token ids for one model's vocabulary. Ids out of range
 * raise an `EdgeMoeError` naming the id and the vocabulary size.
 */
export interface Tokenizer {
  /** Number of entries in the vocabulary; valid ids are `0 … vocabSize - 1`. */
  readonly vocabSize: number;
  /** Beginning-of-sequence id, if the model has one. */
  readonly bosId: number | undefined;
  /** End-of-sequence id, if the model has one. */
  readonly eosId: number | undefined;
  /** Ids that end a generation (EOS, end-of-turn and the like). */
  readonly eogIds: ReadonlySet<number>;
  /** Text to ids. */
  encode(text: string, options?: EncodeOptions): Uint32Array;
  /** Ids to text; bytes that are not valid UTF-8 become U+FFFD. */
  decode(ids: ArrayLike<number>, options?: DecodeOptions): string;
  /** A decoder for ids that arrive one at a time (generation). */
  createStreamDecoder(options?: DecodeOptions): StreamDecoder;
  /** The bytes one id stands for when decoded (empty for control tokens unless `renderSpecial`). */
  tokenBytes(id: number, options?: DecodeOptions): Uint8Array;
  /** The vocabulary entry of an id, as stored (byte-level BPE entries are in the GPT-2 byte alphabet). */
  tokenText(id: number): string;
  /** The kind of an id. */
  tokenKind(id: number): TokenKind;
  /** The id of a vocabulary entry, if there is one. */
  tokenId(text: string): number | undefined;
}
