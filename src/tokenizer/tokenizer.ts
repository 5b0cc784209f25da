/**
 * The tokenizer: special-token splitting, then byte-level BPE (GPT-2, Qwen,
 * Llama 3, OLMoE), SentencePiece-style BPE with byte fallback (Hugging Face's
 * Llama 2 / Mistral tokenizer.json), or llama.cpp's score-based SentencePiece
 * BPE (GGUF `llama` vocabularies: Mixtral, Llama 2); and decoding, whole or
 * streamed.
 *
 * @module
 */
import { EdgeMoeError } from "../errors.ts";
import type { DecodeOptions, EncodeOptions, StreamDecoder, Tokenizer, TokenKind } from "../types.ts";
import { BYTE_TO_CHAR, charToByte, fromByteAlphabet, toByteAlphabet } from "./byte_level.ts";
import { MergeQueue, type PairLookup } from "./merge_queue.ts";
import { PreTokenizer } from "./pretokenize.ts";
import { EOG_TEXTS, type TokenizerSpec } from "./spec.ts";
import { WordCache } from "./word_cache.ts";

/** Largest vocabulary accepted (real ones are ≤ 262,144). */
export const MAX_VOCAB = 1 << 22;

const KINDS: readonly TokenKind[] = ["normal", "normal", "unknown", "control", "user_defined", "unused", "byte"];
const SPACE_MARKER = "\u2581";

function bad(detail: string): EdgeMoeError {
  return new EdgeMoeError("corrupt_data", "build tokenizer", detail);
}

function checkId(id: number | undefined, n: number, name: string): void {
  if (id !== undefined && !(Number.isInteger(id) && id >= 0 && id < n)) {
    throw bad(`${name} ${id} is out of range: the vocabulary has ${n} tokens`);
  }
}

const utf8 = new TextEncoder();
const EMPTY = new Uint8Array(0);

/** A {@linkcode Tokenizer} built from a {@linkcode TokenizerSpec}. */
export class VocabTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number | undefined;
  readonly eosId: number | undefined;
  readonly eogIds: ReadonlySet<number>;
  readonly #spec: TokenizerSpec;
  readonly #tokens: readonly string[];
  readonly #kinds: Uint8Array;
  readonly #ids = new Map<string, number>();
  /** Special-token splitters: control + user-defined + unknown, and user-defined only. */
  readonly #specialAll: RegExp | undefined;
  readonly #specialUser: RegExp | undefined;
  readonly #pre: PreTokenizer | undefined;
  /**
   * SentencePiece text is merged as one sequence. When no token has ▁ after another character, no merge can
   * cross the start of a ▁ run, so the text is cut there into independent (and cacheable) words: same result.
   */
  readonly #spaceWords: RegExp | undefined;
  readonly #byteIds = new Int32Array(256).fill(-1);
  readonly #queue = new MergeQueue();
  readonly #cache = new WordCache();
  readonly #lookup: PairLookup;
  readonly #pieces: (Uint8Array | undefined)[][] = [[], []];
  /** Characters of the current word that are not in the vocabulary, by symbol id − vocabSize. */
  #extra: string[] = [];

  /** Validates `spec` and builds the lookup tables; throws `corrupt_data` naming the first problem. */
  constructor(spec: TokenizerSpec) {
    const tokens = spec.tokens;
    const n = tokens.length;
    if (!Array.isArray(tokens) || n === 0 || n > MAX_VOCAB) {
      throw bad(`expected 1 to ${MAX_VOCAB} tokens, found ${Array.isArray(tokens) ? n : typeof tokens}`);
    }
    this.vocabSize = n;
    this.#spec = spec;
    this.#tokens = tokens;
    this.#kinds = new Uint8Array(n).fill(1);
    for (let i = 0; i < n; i++) {
      if (typeof tokens[i] !== "string") throw bad(`token ${i} is ${typeof tokens[i]}, expected a string`);
      this.#ids.set(tokens[i], i);
    }
    if (spec.types !== undefined) {
      if (spec.types.length !== n) throw bad(`${spec.types.length} token types for ${n} tokens`);
      for (let i = 0; i < n; i++) {
        const t = spec.types[i];
        if (!(Number.isInteger(t) && t >= 0 && t <= 6)) throw bad(`token ${i} has type ${t}, expected 0 to 6`);
        this.#kinds[i] = t === 0 ? 1 : t;
      }
    }
    checkId(spec.bosId, n, "BOS id");
    checkId(spec.eosId, n, "EOS id");
    checkId(spec.unkId, n, "unknown-token id");
    for (const id of spec.eogIds ?? []) checkId(id, n, "end-of-generation id");
    this.bosId = spec.bosId;
    this.eosId = spec.eosId;
    const eog = new Set<number>(spec.eogIds ?? []);
    if (spec.eosId !== undefined) eog.add(spec.eosId);
    for (const text of EOG_TEXTS) {
      const id = this.#ids.get(text);
      if (id !== undefined && this.#kinds[id] === 3) eog.add(id);
    }
    this.eogIds = eog;

    for (let i = 0; i < n; i++) {
      if (this.#kinds[i] !== 6) continue;
      const m = /^<0x([0-9A-Fa-f]{2})>$/.exec(tokens[i]);
      if (m === null) throw bad(`byte token ${i} is "${tokens[i]}", expected <0xNN>`);
      this.#byteIds[parseInt(m[1], 16)] = i;
    }
    if (spec.model === "bpe" && spec.byteLevel) {
      for (let b = 0; b < 256; b++) {
        const id = this.#ids.get(BYTE_TO_CHAR[b]);
        if (id === undefined) throw bad(`byte-level vocabulary lacks the symbol of byte 0x${b.toString(16)}`);
        this.#byteIds[b] = id;
      }
      this.#pre = new PreTokenizer(spec.preTokenizer ?? [], "build tokenizer");
    } else if (spec.byteFallback !== false && spec.unkId === undefined && this.#byteIds.includes(-1)) {
      throw bad("the vocabulary has neither all 256 <0xNN> byte tokens nor an unknown token");
    }
    const crossing = /[^\u2581]\u2581/;
    this.#spaceWords = spec.splitAtSpaceMarker
      ? /[^\u2581]+|\u2581[^\u2581]*/g
      : spec.spaceMarker && !tokens.some((t) => crossing.test(t))
      ? /\u2581*[^\u2581]+|\u2581+/g
      : undefined;
    this.#lookup = spec.model === "bpe" ? this.#rankLookup(spec) : this.#scoreLookup(spec);

    const all: string[] = [], user: string[] = [];
    for (let i = 0; i < n; i++) {
      const k = this.#kinds[i];
      if (tokens[i] === "" || !(k === 2 || k === 3 || k === 4)) continue;
      all.push(tokens[i]);
      if (k === 4) user.push(tokens[i]);
    }
    this.#specialAll = alternation(all);
    this.#specialUser = alternation(user);
  }

  /** Merges by rank from `spec.merges`: pair key `left · vocabSize + right` → rank. */
  #rankLookup(spec: TokenizerSpec): PairLookup {
    const merges = spec.merges;
    if (!Array.isArray(merges)) throw bad(`a BPE vocabulary needs merges, found ${typeof merges}`);
    if (merges.length >= 2 ** 26) throw bad(`${merges.length} merges exceed the limit of ${2 ** 26 - 1}`);
    const n = this.vocabSize;
    const ranks = new Map<number, number>();
    const results = new Int32Array(merges.length);
    for (let r = 0; r < merges.length; r++) {
      const m = merges[r];
      let left: string, right: string;
      if (typeof m === "string") {
        const sp = m.indexOf(" ", 1);
        if (sp < 0) throw bad(`merge ${r} "${m}" is not "left right"`);
        left = m.slice(0, sp);
        right = m.slice(sp + 1);
      } else if (Array.isArray(m) && m.length === 2 && typeof m[0] === "string" && typeof m[1] === "string") {
        left = m[0];
        right = m[1];
      } else throw bad(`merge ${r} is ${JSON.stringify(m)}, expected "left right" or [left, right]`);
      const a = this.#ids.get(left), b = this.#ids.get(right), c = this.#ids.get(left + right);
      if (a === undefined || b === undefined || c === undefined) {
        const missing = a === undefined ? left : b === undefined ? right : left + right;
        throw bad(`merge ${r} "${left} ${right}" refers to "${missing}", which is not in the vocabulary`);
      }
      const key = a * n + b;
      if (ranks.get(key) === undefined) ranks.set(key, r);
      results[r] = c;
    }
    return (a, b) => {
      if (a >= n || b >= n) return -1;
      const r = ranks.get(a * n + b);
      if (r === undefined) return -1;
      this.#queue.priority = r;
      return results[r];
    };
  }

  /** llama.cpp's SentencePiece merge: the pair whose concatenation has the highest score, leftmost first. */
  #scoreLookup(spec: TokenizerSpec): PairLookup {
    const scores = spec.scores;
    const n = this.vocabSize;
    if (scores === undefined || scores.length !== n) {
      throw bad(`a SentencePiece vocabulary needs ${n} scores, found ${scores?.length ?? "none"}`);
    }
    const order = Array.from({ length: n }, (_, i) => i);
    for (const i of order) {
      if (typeof scores[i] !== "number" || Number.isNaN(scores[i])) throw bad(`score ${i} is ${scores[i]}`);
    }
    order.sort((x, y) => scores[y] - scores[x]);
    const rank = new Int32Array(n);
    for (let i = 1; i < n; i++) {
      rank[order[i]] = rank[order[i - 1]] + (scores[order[i]] === scores[order[i - 1]] ? 0 : 1);
    }
    // Every way of writing a token as two tokens is a pair that merges into it.
    const pairs = new Map<number, number>();
    for (let id = 0; id < n; id++) {
      const t = this.#tokens[id];
      const canonical = this.#ids.get(t)!;
      for (let i = t.codePointAt(0)! > 0xffff ? 2 : 1; i < t.length; i += t.codePointAt(i)! > 0xffff ? 2 : 1) {
        const a = this.#ids.get(t.slice(0, i)), b = this.#ids.get(t.slice(i));
        if (a !== undefined && b !== undefined) pairs.set(a * n + b, canonical);
      }
    }
    return (a, b) => {
      // A character outside the vocabulary can still be part of a token: look such pairs up by text.
      const id = a < n && b < n ? pairs.get(a * n + b) : this.#ids.get(this.#symbolText(a) + this.#symbolText(b));
      if (id === undefined) return -1;
      this.#queue.priority = rank[id];
      return id;
    };
  }

  #symbolText(id: number): string {
    return id < this.vocabSize ? this.#tokens[id] : this.#extra[id - this.vocabSize];
  }

  /** Text to ids (see {@linkcode EncodeOptions}). */
  encode(text: string, options: EncodeOptions = {}): Uint32Array {
    if (typeof text !== "string") {
      throw new EdgeMoeError("invalid_argument", "encode", `expected a string, found ${typeof text}`);
    }
    const addSpecial = options.addSpecial ?? true;
    const out = new IdBuffer(text.length >> 2);
    if (addSpecial && this.#spec.addBos && this.bosId !== undefined) out.push(this.bosId);
    const special = options.parseSpecial ? this.#specialAll : this.#specialUser;
    let afterSpecial = true;
    let last = 0;
    if (special !== undefined) {
      special.lastIndex = 0;
      for (let m = special.exec(text); m !== null; m = special.exec(text)) {
        if (m.index > last) this.#encodeText(text.slice(last, m.index), afterSpecial, last === 0, out);
        out.push(this.#ids.get(m[0])!);
        afterSpecial = true;
        last = m.index + m[0].length;
      }
    }
    if (last < text.length) this.#encodeText(last === 0 ? text : text.slice(last), afterSpecial, last === 0, out);
    if (addSpecial && this.#spec.addEos && this.eosId !== undefined) out.push(this.eosId);
    return out.finish();
  }

  /** Tokenizes text between special tokens; `atStart` says it begins the input. */
  #encodeText(text: string, afterSpecial: boolean, atStart: boolean, out: IdBuffer): void {
    const spec = this.#spec;
    if (spec.normalizeNfc) text = text.normalize("NFC");
    if (this.#pre !== undefined) {
      this.#pre.split(text, (source, start, end) => this.#emitWord(source, start, end, out));
      return;
    }
    if (spec.spaceMarker) {
      text = text.replaceAll(" ", SPACE_MARKER);
      const prefix = spec.addSpacePrefix && afterSpecial && (atStart || !spec.prefixOnlyAtStart) &&
        !(spec.prefixUnlessSpace && text.startsWith(SPACE_MARKER));
      if (prefix) text = SPACE_MARKER + text;
    }
    if (this.#spaceWords === undefined) this.#emitWord(text, 0, text.length, out);
    else for (const m of text.matchAll(this.#spaceWords)) this.#emitWord(text, m.index, m.index + m[0].length, out);
  }

  /** Tokenizes the word `source[start, end)` (from the cache if it was seen before). */
  #emitWord(source: string, start: number, end: number, out: IdBuffer): void {
    const h = WordCache.hash(source, start, end);
    let ids = this.#cache.get(source, start, end, h);
    if (ids === undefined) {
      const word = source.slice(start, end);
      ids = this.#pre !== undefined ? this.#mergeBytes(word) : this.#mergeChars(word);
      this.#cache.set(word, h, ids);
    }
    out.append(ids);
  }

  /** Byte-level BPE of one word. */
  #mergeBytes(word: string): Uint32Array {
    const mapped = toByteAlphabet(word);
    if (this.#spec.ignoreMerges) {
      const whole = this.#ids.get(mapped);
      if (whole !== undefined) return Uint32Array.of(whole);
    }
    const symbols = new Int32Array(mapped.length);
    for (let i = 0; i < mapped.length; i++) symbols[i] = this.#byteIds[charToByte(mapped.charCodeAt(i))];
    const len = this.#queue.run(symbols, symbols.length, this.#lookup);
    return Uint32Array.from(symbols.subarray(0, len));
  }

  /** SentencePiece-style BPE of one text: Unicode characters, then merges, then byte fallback. */
  #mergeChars(text: string): Uint32Array {
    const n = this.vocabSize;
    this.#extra = [];
    const symbols: number[] = [];
    for (const ch of text) {
      const id = this.#ids.get(ch);
      if (id !== undefined) symbols.push(id);
      else symbols.push(n + this.#extra.push(ch) - 1);
    }
    const len = this.#queue.run(symbols, symbols.length, this.#lookup);
    const out: number[] = [];
    for (let i = 0; i < len; i++) {
      const s = symbols[i];
      if (s < n) {
        out.push(s);
        continue;
      }
      const bytes = utf8.encode(this.#extra[s - n]);
      const fallback = this.#spec.byteFallback !== false && bytes.every((b) => this.#byteIds[b] >= 0);
      if (fallback) { for (const b of bytes) out.push(this.#byteIds[b]); }
      else if (!(this.#spec.fuseUnknown && out.length > 0 && out[out.length - 1] === this.#spec.unkId)) {
        out.push(this.#spec.unkId!);
      }
    }
    return Uint32Array.from(out);
  }

  #check(id: number, op: string): void {
    if (!(Number.isInteger(id) && id >= 0 && id < this.vocabSize)) {
      throw new EdgeMoeError(
        "invalid_argument",
        op,
        `token id ${id} is out of range: the vocabulary has ${this.vocabSize} tokens (ids 0 to ${this.vocabSize - 1})`,
      );
    }
  }

  /** The bytes of one id (see {@linkcode Tokenizer.tokenBytes}). */
  tokenBytes(id: number, options: DecodeOptions = {}): Uint8Array {
    this.#check(id, "decode");
    const special = options.renderSpecial ? 1 : 0;
    const cached = this.#pieces[special][id];
    if (cached !== undefined) return cached;
    const text = this.#tokens[id];
    let bytes: Uint8Array;
    switch (this.#kinds[id]) {
      case 1:
        bytes = this.#spec.model === "bpe" && this.#spec.byteLevel
          ? fromByteAlphabet(text)
          : utf8.encode(this.#spec.spaceMarker ? text.replaceAll(SPACE_MARKER, " ") : text);
        break;
      case 6:
        bytes = Uint8Array.of(parseInt(text.slice(3, 5), 16));
        break;
      case 4:
        bytes = utf8.encode(text);
        break;
      case 2:
      case 3:
        bytes = special ? utf8.encode(text) : EMPTY;
        break;
      default:
        bytes = EMPTY;
    }
    this.#pieces[special][id] = bytes;
    return bytes;
  }

  /** Ids to text (see {@linkcode Tokenizer.decode}). */
  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    const parts: Uint8Array[] = [];
    let total = 0;
    for (let i = 0; i < ids.length; i++) {
      const b = this.tokenBytes(ids[i], options);
      parts.push(b);
      total += b.length;
    }
    const all = new Uint8Array(total);
    let at = 0;
    for (const p of parts) {
      all.set(p, at);
      at += p.length;
    }
    return new TextDecoder("utf-8", { ignoreBOM: true }).decode(all);
  }

  /** A decoder for ids that arrive one at a time. */
  createStreamDecoder(options: DecodeOptions = {}): StreamDecoder {
    const decoder = new TextDecoder("utf-8", { ignoreBOM: true });
    return {
      push: (id) => decoder.decode(this.tokenBytes(id, options), { stream: true }),
      flush: () => decoder.decode(),
    };
  }

  /** The vocabulary entry of an id. */
  tokenText(id: number): string {
    this.#check(id, "token text");
    return this.#tokens[id];
  }

  /** The kind of an id. */
  tokenKind(id: number): TokenKind {
    this.#check(id, "token kind");
    return KINDS[this.#kinds[id]];
  }

  /** The id of a vocabulary entry. */
  tokenId(text: string): number | undefined {
    return this.#ids.get(text);
  }
}

/** A growable array of ids. */
class IdBuffer {
  #data: Uint32Array;
  #length = 0;

  constructor(capacity: number) {
    this.#data = new Uint32Array(Math.max(16, capacity));
  }

  push(id: number): void {
    if (this.#length === this.#data.length) this.#grow(1);
    this.#data[this.#length++] = id;
  }

  append(ids: Uint32Array): void {
    if (this.#length + ids.length > this.#data.length) this.#grow(ids.length);
    const data = this.#data;
    let at = this.#length;
    for (let i = 0; i < ids.length; i++) data[at++] = ids[i];
    this.#length = at;
  }

  finish(): Uint32Array {
    return this.#data.slice(0, this.#length);
  }

  #grow(extra: number): void {
    const bigger = new Uint32Array(Math.max(this.#data.length * 2, this.#length + extra));
    bigger.set(this.#data.subarray(0, this.#length));
    this.#data = bigger;
  }
}

/** A regex matching any of `texts`, longest first at each position. */
function alternation(texts: string[]): RegExp | undefined {
  if (texts.length === 0) return undefined;
  const sorted = [...new Set(texts)].sort((a, b) => b.length - a.length);
  return new RegExp(sorted.map((t) => t.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")).join("|"), "gu");
}
