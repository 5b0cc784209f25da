/**
 * Output quality of a model on a text, measured as llama.cpp's `perplexity`
 * tool does: the tokens are cut into non-overlapping windows of `nCtx`; each
 * window is evaluated from position 0 (a fresh sequence; its first token
 * replaced by BOS when the tokenizer adds one), and only the second half is
 * scored — the logits at positions `first = nCtx/2 … nCtx−2` predict the tokens
 * at `first+1 … nCtx−1`, so every scored token has at least `nCtx/2` of context.
 *
 * KL divergence (`kld`) compares two models over the same scored positions:
 * `KL(p_base ‖ p_model)` per position, its mean and 99th percentile, and how
 * often the two agree on the most likely token (llama.cpp's `--kl-divergence`).
 *
 * @module
 */
import { EdgeMoeError } from "../errors.ts";

/** What quality measurement needs from a model: logits of one token at one position of a fresh sequence. */
export interface LogitsSource {
  /** Vocabulary size (length of each logits row). */
  readonly nVocab: number;
  /** Starts a new sequence (position 0 next). */
  reset(): void;
  /** Appends `token` and returns the logits after it. */
  next(token: number): Float32Array;
}

/** The windows of a text: `count` windows of `nCtx` tokens, scored from `first`. */
export interface Windows {
  nCtx: number;
  first: number;
  /** Each window's tokens (BOS already substituted when asked). */
  tokens: Uint32Array[];
}

/**
 * Cuts `ids` into `floor(ids.length / nCtx)` (at most `maxWindows`)
 * non-overlapping windows; the first token of each becomes `bos` when given
 * (as llama.cpp does when the vocabulary adds BOS). Positions from `first`
 * (default `nCtx/2`, as llama-perplexity; 0 scores every position) are scored.
 *
 * @throws {EdgeMoeError} `invalid_argument` if `nCtx` < 4 or the text has fewer than `nCtx` tokens.
 */
export function makeWindows(
  ids: ArrayLike<number>,
  nCtx: number,
  bos?: number,
  maxWindows = Infinity,
  first = nCtx >> 1,
): Windows {
  const op = "cut windows";
  if (!Number.isInteger(nCtx) || nCtx < 4) {
    throw new EdgeMoeError("invalid_argument", op, `context must be an integer >= 4, got ${nCtx}`);
  }
  const count = Math.min(Math.floor(ids.length / nCtx), maxWindows);
  if (count < 1) {
    throw new EdgeMoeError(
      "invalid_argument",
      op,
      `the text has ${ids.length} tokens; at least one window of ${nCtx} is needed (use a smaller -c or a longer text)`,
    );
  }
  const tokens: Uint32Array[] = [];
  for (let w = 0; w < count; w++) {
    const t = Uint32Array.from({ length: nCtx }, (_, i) => ids[w * nCtx + i]);
    if (bos !== undefined) t[0] = bos;
    tokens.push(t);
  }
  if (!Number.isInteger(first) || first < 0 || first > nCtx - 2) {
    throw new EdgeMoeError("invalid_argument", op, `first scored position must be in 0..${nCtx - 2}, got ${first}`);
  }
  return { nCtx, first, tokens };
}

/** Positions scored per window: `nCtx − 1 − first`. */
export function scoredPerWindow(w: Windows): number {
  return w.nCtx - 1 - w.first;
}

/**
 * Log-softmax of `logits` into `out` (max-shifted, sums in f64 as llama.cpp).
 * Returns `out`.
 */
export function logSoftmax(logits: Float32Array, out: Float64Array = new Float64Array(logits.length)): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  const lse = max + Math.log(sum);
  for (let i = 0; i < logits.length; i++) out[i] = logits[i] - lse;
  return out;
}

/**
 * Runs every window through `model` and calls `onScored(window, j, logits)`
 * for each scored position `j` (whose logits predict token `j + 1`).
 * `skip(window)` may exclude windows (their positions are not visited).
 */
export function forEachScored(
  model: LogitsSource,
  w: Windows,
  onScored: (window: number, pos: number, logits: Float32Array) => void,
  onWindow?: (done: number, total: number) => void,
  skip?: (window: number) => boolean,
): void {
  for (let k = 0; k < w.tokens.length; k++) {
    if (skip?.(k)) continue;
    const t = w.tokens[k];
    model.reset();
    for (let j = 0; j < w.nCtx - 1; j++) {
      const logits = model.next(t[j]);
      if (j >= w.first) onScored(k, j, logits);
    }
    onWindow?.(k + 1, w.tokens.length);
  }
}

/** Perplexity of a text. */
export interface PerplexityResult {
  /** exp(mean negative log-likelihood) over the scored tokens. */
  perplexity: number;
  /** Its standard error (delta method, as llama.cpp prints). */
  perplexityError: number;
  /** Mean negative log-likelihood (nats per token). */
  nll: number;
  /** Bits per UTF-8 byte of the scored tokens' text. */
  bitsPerByte: number;
  /** Tokens scored. */
  tokens: number;
  /** Windows evaluated. */
  windows: number;
  /** Perplexity after each window (llama.cpp's running `[k]value` printout). */
  running: number[];
}

/**
 * Perplexity of `model` over the windows `w`. `bytesOf(ids)` gives the UTF-8
 * length of the text of `ids` (for bits per byte).
 */
export function perplexity(
  model: LogitsSource,
  w: Windows,
  bytesOf: (ids: Uint32Array) => number,
  onWindow?: (done: number, total: number, running: number) => void,
): PerplexityResult {
  let sum = 0, sum2 = 0, count = 0, bytes = 0;
  const running: number[] = [];
  const ls = new Float64Array(model.nVocab);
  forEachScored(model, w, (k, j, logits) => {
    const nll = -logSoftmax(logits, ls)[w.tokens[k][j + 1]];
    sum += nll;
    sum2 += nll * nll;
    count++;
  }, (done, total) => {
    running.push(Math.exp(sum / count));
    onWindow?.(done, total, running.at(-1)!);
  });
  for (const t of w.tokens) bytes += bytesOf(t.subarray(w.first + 1));
  const mean = sum / count;
  const variance = Math.max(0, sum2 / count - mean * mean);
  const ppl = Math.exp(mean);
  return {
    perplexity: ppl,
    perplexityError: count > 1 ? ppl * Math.sqrt(variance / (count - 1)) : 0,
    nll: mean,
    bitsPerByte: bytes > 0 ? sum / Math.LN2 / bytes : NaN,
    tokens: count,
    windows: w.tokens.length,
    running,
  };
}

/** Log-probabilities of a base model at every scored position, kept to compare other models against. */
export interface BaseLogProbs {
  windows: Windows;
  /** `perWindow[k]` holds `scoredPerWindow` rows of `nVocab` log-probabilities (f64). */
  perWindow: Float64Array[];
  nVocab: number;
}

/** Records the base model's log-probabilities over `w` (nVocab × scored positions × 8 bytes). */
export function baseLogProbs(
  model: LogitsSource,
  w: Windows,
  onWindow?: (done: number, total: number) => void,
): BaseLogProbs {
  const per = scoredPerWindow(w), n = model.nVocab;
  const perWindow = w.tokens.map(() => new Float64Array(per * n));
  const ls = new Float64Array(n);
  forEachScored(model, w, (k, j, logits) => {
    perWindow[k].set(logSoftmax(logits, ls), (j - w.first) * n);
  }, onWindow);
  return { windows: w, perWindow, nVocab: n };
}

/** KL divergence of a model from a base over the same scored positions. */
export interface KldResult {
  /** Mean KL(p_base ‖ p_model) in nats. */
  mean: number;
  /** Standard error of the mean. */
  meanError: number;
  /** 99th percentile of the per-position KL. */
  p99: number;
  /** Largest per-position KL. */
  max: number;
  /** Fraction of positions where both models' most likely token is the same. */
  top1: number;
  /** Positions compared. */
  positions: number;
  /** Perplexity of the model on the scored tokens. */
  perplexity: number;
  /** Perplexity of the base on the scored tokens. */
  basePerplexity: number;
}

/** `KL(p ‖ q)` for log-probability rows `lp` and `lq`, and whether their argmaxes agree. */
export function klRow(lp: Float64Array, lq: Float64Array): { kl: number; same: boolean } {
  let kl = 0, ap = 0, aq = 0;
  for (let i = 0; i < lq.length; i++) {
    const p = Math.exp(lp[i]);
    kl += p * (lp[i] - lq[i]);
    if (lp[i] > lp[ap]) ap = i;
    if (lq[i] > lq[aq]) aq = i;
  }
  return { kl: Math.max(0, kl), same: ap === aq };
}

/**
 * Compares `model` with the recorded base. `skip(window)` excludes windows the
 * caller knows are identical to the base (they count as KL 0, top-1 agreement).
 *
 * @throws {EdgeMoeError} `invalid_argument` if the vocabularies differ.
 */
export function kld(
  model: LogitsSource,
  base: BaseLogProbs,
  onWindow?: (done: number, total: number) => void,
  skip?: (window: number) => boolean,
): KldResult {
  if (model.nVocab !== base.nVocab) {
    throw new EdgeMoeError(
      "invalid_argument",
      "kl divergence",
      `the model has ${model.nVocab} tokens, the base ${base.nVocab}`,
    );
  }
  const w = base.windows, n = base.nVocab, per = scoredPerWindow(w);
  const kls = new Float64Array(w.tokens.length * per);
  let same = 0, nllModel = 0, nllBase = 0;
  const ls = new Float64Array(n);
  for (let k = 0; k < w.tokens.length; k++) {
    if (!skip?.(k)) continue;
    for (let r = 0; r < per; r++) {
      const target = w.tokens[k][w.first + r + 1];
      const lb = base.perWindow[k][r * n + target];
      nllModel -= lb;
      nllBase -= lb;
      same++;
    }
  }
  forEachScored(
    model,
    w,
    (k, j, logits) => {
      const r = j - w.first;
      const lp = base.perWindow[k].subarray(r * n, (r + 1) * n);
      const lq = logSoftmax(logits, ls);
      const { kl, same: s } = klRow(lp, lq);
      kls[k * per + r] = kl;
      if (s) same++;
      const target = w.tokens[k][j + 1];
      nllModel -= lq[target];
      nllBase -= lp[target];
    },
    onWindow,
    skip,
  );
  let sum = 0, sum2 = 0;
  for (const v of kls) {
    sum += v;
    sum2 += v * v;
  }
  const m = kls.length, mean = sum / m;
  const sorted = Float64Array.from(kls).sort();
  return {
    mean,
    meanError: m > 1 ? Math.sqrt(Math.max(0, sum2 / m - mean * mean) / (m - 1)) : 0,
    p99: sorted[Math.min(m - 1, Math.floor(0.99 * (m - 1) + 0.5))],
    max: sorted[m - 1],
    top1: same / m,
    positions: m,
    perplexity: Math.exp(nllModel / m),
    basePerplexity: Math.exp(nllBase / m),
  };
}
