/**
 * Token sampling as llama.cpp does it, with its parameter names and defaults
 * (`common_params_sampling` of the llama.cpp release in node-llama-cpp 3.22.1)
 * and its chain order: penalties → top-k → top-p → min-p → temperature →
 * a draw from the distribution. Each step follows llama.cpp's arithmetic in
 * float32 (`Math.fround`), so the candidates it keeps are the same, and the
 * draw uses the same generator (MT19937), so a seed picks the same token.
 *
 * @module
 */
import { EdgeMoeError } from "../errors.ts";
import { Mt19937 } from "./rng.ts";

/** Sampling parameters: llama.cpp's `llama-cli` flags in camelCase. */
export interface SamplerParams {
  /** `--temp`: divides the logits before the draw; 0 = greedy (argmax). Must be ≥ 0. */
  temp?: number;
  /** `--top-k`: keep the k most likely tokens; 0 = all. */
  topK?: number;
  /** `--top-p`: keep the most likely tokens whose probabilities sum to at least p; 1 = all. In (0, 1]. */
  topP?: number;
  /** `--min-p`: keep tokens with probability ≥ min_p × the top probability; 0 = all. In [0, 1]. */
  minP?: number;
  /** Smallest number of candidates top-p and min-p keep (llama.cpp's `min_keep`); 0 = no minimum. */
  minKeep?: number;
  /** `--repeat-last-n`: how many recent tokens the penalties look at; 0 = none, -1 = the context size. */
  repeatLastN?: number;
  /** `--repeat-penalty`: divides a positive logit (multiplies a negative one) of a recent token; 1 = off. */
  repeatPenalty?: number;
  /** `--frequency-penalty`: subtracted once per occurrence among the recent tokens; 0 = off. */
  frequencyPenalty?: number;
  /** `--presence-penalty`: subtracted once if the token occurs among the recent tokens; 0 = off. */
  presencePenalty?: number;
  /** `--seed`: an integer in [0, 2^32 − 1); undefined (or llama.cpp's 0xFFFFFFFF) picks a random one. */
  seed?: number;
}

/** Parameters with every value decided (the seed too). */
export type ResolvedSamplerParams = Required<SamplerParams>;

/** llama.cpp's defaults (common/common.h, `common_params_sampling`). */
export const DEFAULT_SAMPLER_PARAMS: Readonly<Required<Omit<SamplerParams, "seed">>> = Object.freeze({
  temp: 0.8,
  topK: 40,
  topP: 0.95,
  minP: 0.05,
  minKeep: 0,
  repeatLastN: 64,
  repeatPenalty: 1.0,
  frequencyPenalty: 0.0,
  presencePenalty: 0.0,
});

/** llama.cpp's `LLAMA_DEFAULT_SEED`: "pick a random seed". */
const RANDOM_SEED = 0xffffffff;

const OP = "sampler";

function bad(detail: string): EdgeMoeError {
  return new EdgeMoeError("invalid_argument", OP, detail);
}

/**
 * Checks sampling parameters and fills in llama.cpp's defaults.
 *
 * @param params what the user asked for
 * @throws EdgeMoeError `invalid_argument` naming the parameter, the value, and the allowed range
 */
export function resolveSamplerParams(params: SamplerParams = {}): ResolvedSamplerParams {
  const p = { ...DEFAULT_SAMPLER_PARAMS };
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || key === "seed") continue;
    if (!Object.hasOwn(DEFAULT_SAMPLER_PARAMS, key)) throw bad(`unknown sampling parameter '${key}'`);
    if (typeof value !== "number" || !Number.isFinite(value)) {
      throw bad(`${key} must be a finite number, got ${String(value)}`);
    }
    (p as Record<string, number>)[key] = value;
  }
  const int = (name: keyof typeof p, min: number) => {
    if (!Number.isInteger(p[name]) || p[name] < min) throw bad(`${name} must be an integer ≥ ${min}, got ${p[name]}`);
  };
  if (p.temp < 0) throw bad(`temp must be ≥ 0 (0 = greedy), got ${p.temp}`);
  int("topK", 0);
  if (!(p.topP > 0 && p.topP <= 1)) throw bad(`topP must be in (0, 1], got ${p.topP}`);
  if (!(p.minP >= 0 && p.minP <= 1)) throw bad(`minP must be in [0, 1], got ${p.minP}`);
  int("minKeep", 0);
  int("repeatLastN", -1);
  if (!(p.repeatPenalty > 0)) throw bad(`repeatPenalty must be > 0 (1 = off), got ${p.repeatPenalty}`);
  let seed = params.seed;
  if (seed !== undefined && (!Number.isInteger(seed) || seed < 0 || seed > RANDOM_SEED)) {
    throw bad(`seed must be an integer in [0, ${RANDOM_SEED}], got ${seed}`);
  }
  if (seed === undefined || seed === RANDOM_SEED) seed = crypto.getRandomValues(new Uint32Array(1))[0] % RANDOM_SEED;
  return { ...p, seed };
}

/** Options of {@linkcode Sampler} that are not sampling parameters. */
export interface SamplerOptions {
  /** The context size, which `repeatLastN: -1` stands for; without it -1 means every token since the last reset. */
  contextSize?: number;
}

/** The candidates a sampler keeps, most likely first when sorted. */
export interface Candidates {
  /** Token ids. */
  ids: Int32Array;
  /** Their logits after the penalties. */
  logits: Float32Array;
}

const f = Math.fround;

/** A working copy of the candidate tokens (llama.cpp's `llama_token_data_array`). */
class Work {
  ids: Int32Array;
  logits: Float32Array;
  p: Float32Array;
  size = 0;
  sorted = false;
  constructor(n: number) {
    this.ids = new Int32Array(n);
    this.logits = new Float32Array(n);
    this.p = new Float32Array(n);
  }

  load(logits: Float32Array): void {
    this.logits.set(logits);
    for (let i = 0; i < logits.length; i++) this.ids[i] = i;
    this.size = logits.length;
    this.sorted = false;
  }

  /**
   * Positions of the `k` largest logits, largest first (equal logits: lower position first). For small `k`
   * one pass keeps a sorted buffer that most values fail to enter; otherwise a full sort.
   */
  order(k: number): Int32Array {
    const n = this.size;
    const l = this.logits;
    if (k * 16 <= n) {
      const idx = new Int32Array(k);
      const val = new Float32Array(k);
      let count = 0;
      for (let i = 0; i < n; i++) {
        const v = l[i];
        if (count === k && !(v > val[k - 1])) continue;
        let pos = count < k ? count++ : k - 1;
        while (pos > 0 && val[pos - 1] < v) {
          val[pos] = val[pos - 1];
          idx[pos] = idx[pos - 1];
          pos--;
        }
        val[pos] = v;
        idx[pos] = i;
      }
      return idx;
    }
    const bits = Math.max(1, Math.ceil(Math.log2(n)));
    if (bits > 21) {
      const all = new Int32Array(n);
      for (let i = 0; i < n; i++) all[i] = i;
      all.sort((a, b) => l[b] - l[a] || a - b);
      return all.subarray(0, k);
    }
    // One numeric sort of exact keys: (descending-order rank of the float's bits) · 2^bits + position.
    const scale = 2 ** bits;
    const keys = new Float64Array(n);
    const f32 = new Float32Array(1);
    const u32 = new Uint32Array(f32.buffer);
    for (let i = 0; i < n; i++) {
      f32[0] = l[i] === 0 ? 0 : l[i];
      const b = u32[0];
      const ascending = b & 0x80000000 ? ~b >>> 0 : (b | 0x80000000) >>> 0;
      keys[i] = (0xffffffff - ascending) * scale + i;
    }
    keys.sort();
    const out = new Int32Array(k);
    for (let i = 0; i < k; i++) out[i] = keys[i] % scale;
    return out;
  }

  /** Keeps the candidates at the listed positions, in that order. */
  keep(positions: Int32Array | number[]): void {
    const k = positions.length;
    const ids = new Int32Array(k), logits = new Float32Array(k), p = new Float32Array(k);
    for (let i = 0; i < k; i++) {
      const from = positions[i];
      ids[i] = this.ids[from];
      logits[i] = this.logits[from];
      p[i] = this.p[from];
    }
    this.ids.set(ids);
    this.logits.set(logits);
    this.p.set(p);
    this.size = k;
  }

  /** Sorts the `k` largest first and drops the rest. */
  sortTop(k: number): void {
    this.keep(this.order(k));
    this.sorted = true;
  }

  maxLogit(): number {
    if (this.sorted) return this.logits[0];
    let m = -Infinity;
    for (let i = 0; i < this.size; i++) if (this.logits[i] > m) m = this.logits[i];
    return m;
  }

  /** Float32 softmax into `p`, summed in the current order. */
  softmax(): void {
    const max = this.maxLogit();
    let sum = 0;
    for (let i = 0; i < this.size; i++) {
      const e = f(Math.exp(f(this.logits[i] - max)));
      this.p[i] = e;
      sum = f(sum + e);
    }
    for (let i = 0; i < this.size; i++) this.p[i] = f(this.p[i] / sum);
  }
}

/**
 * A sampler: the chain of llama.cpp's default sampler with its state (the
 * recent tokens the penalties look at, the random generator).
 *
 * @example
 * ```ts
 * import { Sampler } from "@edgemoe/edgemoe";
 * const s = new Sampler(4, { temp: 0 });
 * console.log(s.sample(new Float32Array([0.1, 2.5, -1, 0.3]))); // 1
 * ```
 */
export class Sampler {
  /** The parameters in use, defaults and seed filled in. */
  readonly params: Readonly<ResolvedSamplerParams>;
  /** The vocabulary size: the length every logits vector must have. */
  readonly nVocab: number;
  readonly #f: { temp: number; topP: number; minP: number; rp: number; freq: number; present: number };
  readonly #lastN: number;
  readonly #work: Work;
  readonly #counts = new Map<number, number>();
  readonly #ring: Int32Array;
  #ringStart = 0;
  #ringSize = 0;
  #rng: Mt19937;

  /**
   * Creates a sampler for a vocabulary of `nVocab` tokens.
   *
   * @param nVocab the vocabulary size
   * @param params sampling parameters (llama.cpp's defaults for those left out)
   * @param options the context size for `repeatLastN: -1`
   * @throws EdgeMoeError `invalid_argument` for an out-of-range parameter or vocabulary size
   */
  constructor(nVocab: number, params: SamplerParams = {}, options: SamplerOptions = {}) {
    if (!Number.isInteger(nVocab) || nVocab < 1 || nVocab > 1 << 24) {
      throw bad(`the vocabulary size must be an integer in [1, ${1 << 24}], got ${nVocab}`);
    }
    this.params = Object.freeze(resolveSamplerParams(params));
    this.nVocab = nVocab;
    const p = this.params;
    this.#f = {
      temp: f(p.temp),
      topP: f(p.topP),
      minP: f(p.minP),
      rp: f(p.repeatPenalty),
      freq: f(p.frequencyPenalty),
      present: f(p.presencePenalty),
    };
    const ctx = options.contextSize;
    if (ctx !== undefined && (!Number.isInteger(ctx) || ctx < 1)) {
      throw bad(`contextSize must be a positive integer, got ${ctx}`);
    }
    this.#lastN = p.repeatLastN === -1 ? (ctx ?? Infinity) : p.repeatLastN;
    this.#ring = new Int32Array(Number.isFinite(this.#lastN) ? this.#lastN : 0);
    this.#work = new Work(nVocab);
    this.#rng = new Mt19937(p.seed);
  }

  /** Forgets the recent tokens and restarts the random generator from the seed. */
  reset(): void {
    this.#counts.clear();
    this.#ringStart = 0;
    this.#ringSize = 0;
    this.#rng = new Mt19937(this.params.seed);
  }

  /**
   * Records a token as generated (or as part of the prompt) for the penalties.
   *
   * @throws EdgeMoeError `invalid_argument` for an id outside the vocabulary
   */
  accept(token: number): void {
    if (!Number.isInteger(token) || token < 0 || token >= this.nVocab) {
      throw bad(`token id ${token} is outside the vocabulary [0, ${this.nVocab})`);
    }
    if (this.#lastN === 0) return;
    this.#counts.set(token, (this.#counts.get(token) ?? 0) + 1);
    if (!Number.isFinite(this.#lastN)) return;
    const cap = this.#ring.length;
    if (this.#ringSize >= cap) {
      const old = this.#ring[this.#ringStart];
      const c = this.#counts.get(old)! - 1;
      if (c === 0) this.#counts.delete(old);
      else this.#counts.set(old, c);
      this.#ring[this.#ringStart] = token;
      this.#ringStart = (this.#ringStart + 1) % cap;
    } else {
      this.#ring[(this.#ringStart + this.#ringSize) % cap] = token;
      this.#ringSize++;
    }
  }

  /**
   * The candidates left after the penalties, top-k, top-p and min-p (before
   * temperature), in llama.cpp's order.
   */
  candidates(logits: Float32Array): Candidates {
    this.#filter(logits);
    const w = this.#work;
    return { ids: w.ids.slice(0, w.size), logits: w.logits.slice(0, w.size) };
  }

  /**
   * Picks the next token from `logits` and records it (as llama.cpp's
   * `llama_sampler_sample` does).
   *
   * @throws EdgeMoeError `invalid_argument` when logits has the wrong length or holds NaN
   */
  sample(logits: Float32Array): number {
    this.#filter(logits);
    const w = this.#work;
    this.#temperature();
    const picked = this.#draw();
    const token = w.ids[picked];
    this.accept(token);
    return token;
  }

  #filter(logits: Float32Array): void {
    if (!(logits instanceof Float32Array) || logits.length !== this.nVocab) {
      throw bad(`logits must be a Float32Array of ${this.nVocab} values, got ${describe(logits)}`);
    }
    let max = -Infinity;
    for (let i = 0; i < logits.length; i++) {
      const l = logits[i];
      if (!(l < Infinity)) throw bad(`logit ${i} is ${l}; logits must be finite or -Infinity`);
      if (l > max) max = l;
    }
    if (max === -Infinity) throw bad("every logit is -Infinity: there is no token to pick");
    this.#work.load(logits);
    this.#penalties();
    this.#topK();
    this.#topP();
    this.#minP();
  }

  #penalties(): void {
    const { rp, freq, present } = this.#f;
    if (this.#lastN === 0 || (rp === 1 && freq === 0 && present === 0) || this.#counts.size === 0) return;
    // Penalties run first, on the full vocabulary in token order, so a token's position is its id.
    const w = this.#work;
    for (const [token, count] of this.#counts) {
      let l = w.logits[token];
      l = l <= 0 ? f(l * rp) : f(l / rp);
      w.logits[token] = f(l - f(f(count * freq) + present));
    }
    w.sorted = false;
  }

  #topK(): void {
    const k = this.params.topK;
    const w = this.#work;
    if (k <= 0) return;
    const kk = Math.min(k, w.size);
    if (w.sorted) w.size = kk;
    else w.sortTop(kk);
  }

  #topP(): void {
    const p = this.#f.topP;
    const w = this.#work;
    if (p >= 1) return;
    w.softmax();
    const minKeep = this.params.minKeep;
    /** How many of `order` (positions, most likely first) reach p, or 0 if they do not. */
    const reach = (order: Int32Array | null, n: number): number => {
      let cum = 0;
      for (let i = 0; i < n; i++) {
        cum = f(cum + w.p[order ? order[i] : i]);
        if (cum >= p && i + 1 >= minKeep) return i + 1;
      }
      return 0;
    };
    if (w.sorted) {
      w.size = reach(null, w.size) || w.size;
      return;
    }
    // Like llama.cpp: try the 256 most likely first, and sort everything only if they do not reach p.
    let order = w.size > 1024 ? w.order(256) : w.order(w.size);
    let last = reach(order, order.length);
    if (last === 0) {
      if (order.length < w.size) order = w.order(w.size);
      last = reach(order, order.length) || order.length;
    }
    w.keep(order.subarray(0, last));
    w.sorted = true;
  }

  #minP(): void {
    const p = this.#f.minP;
    const w = this.#work;
    const minKeep = this.params.minKeep;
    if (p <= 0 || w.size === 0) return;
    const logP = f(Math.log(p));
    if (!w.sorted) {
      const minLogit = f(w.maxLogit() + logP);
      const kept: number[] = [];
      for (let i = 0; i < w.size; i++) if (w.logits[i] >= minLogit) kept.push(i);
      if (kept.length > 0 && kept.length >= minKeep) {
        w.keep(kept);
        return;
      }
      w.sortTop(w.size);
    }
    const minLogit = f(w.logits[0] + logP);
    let i = 1;
    for (; i < w.size; i++) if (w.logits[i] < minLogit && i >= minKeep) break;
    w.size = i;
  }

  #temperature(): void {
    const t = this.#f.temp;
    const w = this.#work;
    if (w.size === 0) return;
    if (t <= 0) {
      let best = 0;
      for (let i = 1; i < w.size; i++) {
        if (w.logits[i] > w.logits[best]) {
          w.logits[best] = -Infinity;
          best = i;
        } else w.logits[i] = -Infinity;
      }
      return;
    }
    for (let i = 0; i < w.size; i++) w.logits[i] = f(w.logits[i] / t);
  }

  /** llama.cpp's `dist`: softmax in float32, one uniform double, the first index whose running sum reaches it. */
  #draw(): number {
    const w = this.#work;
    if (w.size === 1) {
      this.#rng.nextDouble();
      return 0;
    }
    const max = w.maxLogit();
    let total = 0;
    for (let i = 0; i < w.size; i++) {
      const e = f(Math.exp(f(w.logits[i] - max)));
      w.p[i] = e;
      total += e;
    }
    const target = total * this.#rng.nextDouble();
    let run = 0;
    for (let i = 0; i < w.size; i++) {
      run += w.p[i];
      if (run >= target) return i;
    }
    return w.size - 1;
  }
}

function describe(x: unknown): string {
  if (x instanceof Float32Array) return `a Float32Array of ${x.length}`;
  if (ArrayBuffer.isView(x)) return `a ${x.constructor.name}`;
  return typeof x;
}
