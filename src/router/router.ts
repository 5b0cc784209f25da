/**
 * Routers: pure functions from a layer's router logits to the experts to run
 * and their weights. No I/O; the expert store only ever sees the ids.
 *
 * @module
 */
import { EdgeMoeError } from "../errors.ts";

/** The experts chosen for one token in one layer, best first. */
export interface Routing {
  /** Expert ids, `k` of them, in descending order of router probability. */
  ids: Uint32Array;
  /** The weight each expert's output is scaled by. */
  weights: Float32Array;
}

/** How an architecture turns router logits into weights. */
export interface RouterOptions {
  /** Experts used per token (`expert_used_count`). */
  k: number;
  /**
   * `"softmax_topk"`: softmax over all experts, then keep the top k (Mixtral,
   * Qwen-MoE, OLMoE). `"topk_softmax"`: top k of the logits, softmax over them.
   */
  gating: "softmax_topk" | "topk_softmax";
  /** Rescale the k kept probabilities to sum to 1 (Mixtral, Qwen3-MoE `norm_topk_prob`). */
  normalize: boolean;
}

/** A router: logits in, routing out. */
export type Router = (logits: Float32Array) => Routing;

/**
 * Picks the `k` largest values' indices in descending order; ties go to the
 * lower index, so routing is deterministic.
 */
export function topK(values: Float32Array, k: number): Uint32Array {
  const ids = new Uint32Array(k);
  const best = new Float32Array(k).fill(-Infinity);
  let filled = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (filled === k && !(v > best[k - 1])) continue;
    let j = filled < k ? filled++ : k - 1;
    while (j > 0 && v > best[j - 1]) {
      best[j] = best[j - 1];
      ids[j] = ids[j - 1];
      j--;
    }
    best[j] = v;
    ids[j] = i;
  }
  return ids;
}

/** Softmax of `x` in place, in f32 like GGML (max subtracted first). */
export function softmaxInPlace(x: Float32Array): void {
  let max = -Infinity;
  for (const v of x) if (v > max) max = v;
  let sum = 0;
  for (let i = 0; i < x.length; i++) {
    const e = Math.fround(Math.exp(x[i] - max));
    x[i] = e;
    sum += e;
  }
  const inv = 1 / sum;
  for (let i = 0; i < x.length; i++) x[i] = x[i] * inv;
}

/**
 * Builds the router an architecture uses.
 *
 * @throws {EdgeMoeError} `invalid_argument` if k < 1.
 */
export function createRouter(opts: RouterOptions): Router {
  if (!Number.isInteger(opts.k) || opts.k < 1) {
    throw new EdgeMoeError("invalid_argument", "create router", `k must be an integer ≥ 1, got ${opts.k}`);
  }
  return (logits) => {
    if (opts.k > logits.length) {
      throw new EdgeMoeError("invalid_argument", "route", `k = ${opts.k} but only ${logits.length} experts`);
    }
    let ids: Uint32Array;
    const weights = new Float32Array(opts.k);
    if (opts.gating === "softmax_topk") {
      const probs = Float32Array.from(logits);
      softmaxInPlace(probs);
      ids = topK(probs, opts.k);
      for (let i = 0; i < opts.k; i++) weights[i] = probs[ids[i]];
    } else {
      ids = topK(logits, opts.k);
      for (let i = 0; i < opts.k; i++) weights[i] = logits[ids[i]];
      softmaxInPlace(weights);
    }
    if (opts.normalize) {
      let sum = 0;
      for (const w of weights) sum += w;
      for (let i = 0; i < weights.length; i++) weights[i] = weights[i] / sum;
    }
    return { ids, weights };
  };
}
