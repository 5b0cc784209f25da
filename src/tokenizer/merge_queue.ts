/**
 * The merge loop shared by both BPE flavours: a doubly linked list of symbols
 * and a binary min-heap of candidate pairs keyed by (priority, left position),
 * so a word of n symbols merges in O(n log n). Stale heap entries are skipped
 * when popped.
 *
 * @module
 */
import { EdgeMoeError } from "../errors.ts";

/** Positions and priorities are packed into one float64 heap key: priority · 2^26 + position. */
const POS_BITS = 2 ** 26;

/** The most symbols one word may have (a longer word is a pre-tokenizer misconfiguration or an attack). */
export const MAX_WORD_SYMBOLS: number = POS_BITS - 1;

/**
 * Decides whether two adjacent symbols merge: returns the merged symbol and
 * sets `priority` (lower merges first; below 2^26), or returns -1.
 */
export type PairLookup = (left: number, right: number) => number;

/** Reusable buffers; one instance serves a tokenizer (encode is synchronous). */
export class MergeQueue {
  #next = new Int32Array(64);
  #prev = new Int32Array(64);
  #sym = new Int32Array(64);
  #heap = new Float64Array(64);
  #size = 0;
  /** Set by a {@linkcode PairLookup} for the pair it accepted. */
  priority = 0;

  /**
   * Merges `symbols` in place by `lookup` and returns how many remain at the
   * front of `symbols`.
   */
  run(symbols: Int32Array | number[], n: number, lookup: PairLookup): number {
    if (n > MAX_WORD_SYMBOLS) {
      throw new EdgeMoeError("invalid_argument", "tokenize", `a word of ${n} symbols exceeds ${MAX_WORD_SYMBOLS}`);
    }
    if (n < 2) return n;
    this.#reserve(n);
    const next = this.#next, prev = this.#prev, sym = this.#sym;
    for (let i = 0; i < n; i++) {
      sym[i] = symbols[i];
      next[i] = i + 1 < n ? i + 1 : -1;
      prev[i] = i - 1;
    }
    this.#size = 0;
    for (let i = 0; i + 1 < n; i++) this.#consider(i, i + 1, lookup);
    while (this.#size > 0) {
      const key = this.#pop();
      const left = key % POS_BITS;
      const priority = (key - left) / POS_BITS;
      const right = next[left];
      if (sym[left] < 0 || right < 0) continue;
      const merged = lookup(sym[left], sym[right]);
      if (merged < 0 || this.priority !== priority) continue;
      sym[left] = merged;
      sym[right] = -1;
      next[left] = next[right];
      if (next[right] >= 0) prev[next[right]] = left;
      if (prev[left] >= 0) this.#consider(prev[left], left, lookup);
      if (next[left] >= 0) this.#consider(left, next[left], lookup);
    }
    let out = 0;
    for (let i = 0; i >= 0; i = next[i]) symbols[out++] = sym[i];
    return out;
  }

  #consider(left: number, right: number, lookup: PairLookup): void {
    if (lookup(this.#sym[left], this.#sym[right]) < 0) return;
    if (this.#size === this.#heap.length) {
      const bigger = new Float64Array(this.#heap.length * 2);
      bigger.set(this.#heap);
      this.#heap = bigger;
    }
    const heap = this.#heap;
    const key = this.priority * POS_BITS + left;
    let i = this.#size++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent] <= key) break;
      heap[i] = heap[parent];
      i = parent;
    }
    heap[i] = key;
  }

  #pop(): number {
    const heap = this.#heap;
    const top = heap[0];
    const last = heap[--this.#size];
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= this.#size) break;
      if (c + 1 < this.#size && heap[c + 1] < heap[c]) c++;
      if (heap[c] >= last) break;
      heap[i] = heap[c];
      i = c;
    }
    heap[i] = last;
    return top;
  }

  #reserve(n: number): void {
    if (this.#sym.length >= n) return;
    const cap = Math.max(n, this.#sym.length * 2);
    this.#next = new Int32Array(cap);
    this.#prev = new Int32Array(cap);
    this.#sym = new Int32Array(cap);
  }
}
