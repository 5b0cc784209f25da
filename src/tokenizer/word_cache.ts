/**
 * Ids of words already tokenized, looked up by a range of the input text so
 * that no string is created for a word seen before (creating and hashing a
 * fresh string per word costs more than the rest of encoding).
 *
 * @module
 */

/** Words this long or longer are not cached (rare, and they would bloat the cache). */
export const CACHE_WORD_CHARS = 256;
const SLOTS = 1 << 17;

/** An open-addressing hash table from word text to ids; cleared when it fills up. */
export class WordCache {
  readonly #keys: (string | undefined)[] = new Array(SLOTS);
  readonly #values: (Uint32Array | undefined)[] = new Array(SLOTS);
  readonly #hashes = new Int32Array(SLOTS);
  #size = 0;

  /** FNV-1a over the UTF-16 code units of `text[start, end)`. */
  static hash(text: string, start: number, end: number): number {
    let h = 0x811c9dc5 | 0;
    for (let i = start; i < end; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
    return h;
  }

  /** The ids cached for `text[start, end)`, whose hash is `h`. */
  get(text: string, start: number, end: number, h: number): Uint32Array | undefined {
    const len = end - start;
    for (let slot = h & (SLOTS - 1);; slot = (slot + 1) & (SLOTS - 1)) {
      const key = this.#keys[slot];
      if (key === undefined) return undefined;
      if (this.#hashes[slot] !== h || key.length !== len) continue;
      let i = 0;
      while (i < len && key.charCodeAt(i) === text.charCodeAt(start + i)) i++;
      if (i === len) return this.#values[slot];
    }
  }

  /** Caches `ids` for `word` (hash `h`), unless the word is too long. */
  set(word: string, h: number, ids: Uint32Array): void {
    if (word.length >= CACHE_WORD_CHARS) return;
    if (this.#size >= SLOTS >> 1) {
      this.#keys.fill(undefined);
      this.#values.fill(undefined);
      this.#size = 0;
    }
    let slot = h & (SLOTS - 1);
    while (this.#keys[slot] !== undefined) slot = (slot + 1) & (SLOTS - 1);
    this.#keys[slot] = word;
    this.#values[slot] = ids;
    this.#hashes[slot] = h;
    this.#size++;
  }
}
