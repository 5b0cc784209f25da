/**
 * The shared MoE transformer graph with a KV cache: one token at a time
 * (`forward`, decode) or a chunk of prompt tokens at once (`forwardBatch`,
 * every matrix applied to all of them with one native matmul), bit-identical.
 * Architecture differences come from an `ArchSpec`; weights from a
 * `ModelWeights`; experts are fetched by (layer, id) only for the ids the
 * router picks.
 *
 * Per layer:
 *   h   = x + Wo · attention(rope(norm_qk(Wq·n)), rope(norm_qk(Wk·n)), Wv·n),  n = rmsnorm(x)·attn_norm
 *   m   = rmsnorm(h)·ffn_norm
 *   out = h + Σ_{e ∈ topk(router(Wr·m))} w_e · down_e(silu(gate_e·m) ⊙ up_e·m)  [+ shared expert]
 *
 * @module
 */
import { EdgeMoeError } from "../errors.ts";
import type { NativeLibrary, ThreadPool } from "../../ffi/native.ts";
import { createRouter, type Router, topK } from "../router/router.ts";
import { type ArchSpec, archSpec } from "./arch.ts";
import { addInPlace, dequantizeRow, matmul, matmulMany, matrixShape } from "./ops.ts";
import {
  type ExpertSource,
  type ExpertWeights,
  type ModelWeights,
  residentExperts,
  type TensorData,
} from "./weights.ts";
import type { Predictor } from "../predictor/predictor.ts";

/** Hyperparameters read from `{arch}.*` metadata. */
export interface HParams {
  nEmbd: number;
  nLayer: number;
  nHead: number;
  nHeadKv: number;
  headDim: number;
  nExpert: number;
  nExpertUsed: number;
  nVocab: number;
  ctxTrain: number;
  eps: number;
  ropeBase: number;
  ropeDim: number;
  normalizeTopK: boolean;
}

function required(w: ModelWeights, key: string): number {
  const v = w.number(key);
  if (v === undefined) throw new EdgeMoeError("corrupt_data", "load model", `metadata key ${key} is missing`);
  if (!Number.isFinite(v) || v < 0) {
    throw new EdgeMoeError("corrupt_data", "load model", `${key} = ${v} is not a valid size`);
  }
  return v;
}

/** Reads and checks the hyperparameters of `w` for `spec`. */
export function readHParams(w: ModelWeights, spec: ArchSpec): HParams {
  const a = w.arch;
  const nEmbd = required(w, `${a}.embedding_length`);
  const nHead = required(w, `${a}.attention.head_count`);
  const headDim = w.number(`${a}.attention.key_length`) ?? nEmbd / nHead;
  const embd = w.tensor("token_embd.weight");
  if (!embd) throw new EdgeMoeError("corrupt_data", "load model", "tensor token_embd.weight is missing");
  const hp: HParams = {
    nEmbd,
    nLayer: required(w, `${a}.block_count`),
    nHead,
    nHeadKv: w.number(`${a}.attention.head_count_kv`) ?? nHead,
    headDim,
    nExpert: required(w, `${a}.expert_count`),
    nExpertUsed: required(w, `${a}.expert_used_count`),
    nVocab: matrixShape(embd).rows,
    ctxTrain: w.number(`${a}.context_length`) ?? 4096,
    eps: w.number(`${a}.attention.layer_norm_rms_epsilon`) ?? 1e-6,
    ropeBase: w.number(`${a}.rope.freq_base`) ?? 10000,
    ropeDim: w.number(`${a}.rope.dimension_count`) ?? headDim,
    normalizeTopK: w.bool(`${a}.expert_weights_norm`) ?? spec.normalizeTopK,
  };
  const bad = (why: string) => new EdgeMoeError("corrupt_data", "load model", why);
  for (const [k, v] of Object.entries(hp)) {
    if (typeof v === "number" && !(v > 0 && Number.isFinite(v))) {
      throw bad(`hyperparameter ${k} = ${v} must be positive`);
    }
  }
  if (!Number.isInteger(hp.headDim)) throw bad(`head dimension ${hp.headDim} is not an integer`);
  if (hp.nHead % hp.nHeadKv !== 0) throw bad(`head_count ${hp.nHead} is not a multiple of head_count_kv ${hp.nHeadKv}`);
  if (hp.nExpertUsed > hp.nExpert) throw bad(`expert_used_count ${hp.nExpertUsed} > expert_count ${hp.nExpert}`);
  if (hp.ropeDim > hp.headDim || hp.ropeDim % 2) {
    throw bad(`rope dimension ${hp.ropeDim} does not fit head dimension ${hp.headDim}`);
  }
  return hp;
}

/**
 * Attention over fewer positions × query dims than this runs on the calling
 * thread: below it a pool dispatch costs about what splitting the heads saves
 * (measured 2026-11-25 with bench/attention_bench.ts, 32 heads over 4 KV
 * heads of 128, 1 thread → 2: 8 positions 2.7 → 3.5 µs, 16 positions 4.6 →
 * 4.4 µs, 64 positions 15.6 → 9.1 µs; bench/matmul.md). Results do not
 * depend on it.
 */
const ATTENTION_POOL_MIN_MACS = 1 << 16;

/**
 * One new buffer and its views of `lengths` elements, end to end: a group of
 * products writes into one buffer, whose address the native call resolves once.
 */
function splitBuffer(lengths: readonly number[]): { all: Float32Array; views: Float32Array[] } {
  const all = new Float32Array(lengths.reduce((a, n) => a + n, 0));
  let at = 0;
  return { all, views: lengths.map((n) => all.subarray(at, at += n)) };
}

/** Options of {@linkcode MoeModel}. */
export interface ModelOptions {
  /** Context length (KV cache size) in tokens; default min(training context, 4096). */
  nCtx?: number;
  /** Called with each layer's routing, for statistics and prediction. */
  onRoute?: (layer: number, ids: Uint32Array) => void;
  /** Where the experts come from (default: the weights, in RAM). */
  experts?: ExpertSource;
  /** Predicts the next layer's experts so their reads start early (default: none). */
  predictor?: Predictor;
  /** Threads that split each matrix's rows (results are identical for any count). */
  pool?: ThreadPool;
  /**
   * Element type of the KV cache: `"f32"` (default) or `"f16"` (half the
   * memory; queries and attention weights are rounded to f16 as llama.cpp does
   * with its F16 cache).
   */
  kvType?: "f32" | "f16";
}

interface LayerWeights {
  attnNorm: Float32Array;
  q: TensorData;
  k: TensorData;
  v: TensorData;
  qBias?: Float32Array;
  kBias?: Float32Array;
  vBias?: Float32Array;
  o: TensorData;
  qNorm?: Float32Array;
  kNorm?: Float32Array;
  ffnNorm: Float32Array;
  router: TensorData;
  shared?: { gate: TensorData; up: TensorData; down: TensorData; gateInp: TensorData };
}

/** A loaded MoE model with its KV cache. */
export class MoeModel {
  /** Hyperparameters. */
  readonly hp: HParams;
  /** The architecture spec. */
  readonly spec: ArchSpec;
  /** KV cache length in tokens. */
  readonly nCtx: number;
  readonly #w: ModelWeights;
  readonly #lib: NativeLibrary;
  readonly #layers: LayerWeights[];
  readonly #router: Router;
  readonly #embd: TensorData;
  readonly #output: TensorData;
  readonly #outputNorm: Float32Array;
  readonly #kCache: (Float32Array | Float16Array)[];
  readonly #vCache: (Float32Array | Float16Array)[];
  readonly #onRoute?: (layer: number, ids: Uint32Array) => void;
  readonly #experts: ExpertSource;
  readonly #predictor?: Predictor;
  readonly #pool?: ThreadPool;
  #routed: (Uint32Array | undefined)[] = [];

  /**
   * @throws {EdgeMoeError} `unsupported` architecture, `corrupt_data` for missing or misshapen tensors.
   */
  constructor(weights: ModelWeights, lib: NativeLibrary, opts: ModelOptions = {}) {
    this.spec = archSpec(weights.arch);
    this.hp = readHParams(weights, this.spec);
    this.#w = weights;
    this.#lib = lib;
    this.nCtx = opts.nCtx ?? Math.min(this.hp.ctxTrain, 4096);
    this.#onRoute = opts.onRoute;
    this.#experts = opts.experts ?? residentExperts(weights);
    this.#predictor = opts.predictor;
    this.#pool = opts.pool;
    const hp = this.hp;
    this.#router = createRouter({ k: hp.nExpertUsed, gating: this.spec.gating, normalize: hp.normalizeTopK });
    this.#embd = this.#tensor("token_embd.weight", [hp.nEmbd, hp.nVocab]);
    this.#output = weights.tensor("output.weight") ?? this.#embd;
    this.#expectDims(this.#output, [hp.nEmbd, hp.nVocab]);
    this.#outputNorm = this.#vector("output_norm.weight", hp.nEmbd)!;
    const qDim = hp.nHead * hp.headDim, kvDim = hp.nHeadKv * hp.headDim;
    this.#layers = [];
    for (let l = 0; l < hp.nLayer; l++) {
      const p = `blk.${l}.`;
      const qkNormLen = this.spec.qkNorm === "head" ? [hp.headDim, hp.headDim] : [qDim, kvDim];
      const layer: LayerWeights = {
        attnNorm: this.#vector(`${p}attn_norm.weight`, hp.nEmbd)!,
        q: this.#tensor(`${p}attn_q.weight`, [hp.nEmbd, qDim]),
        k: this.#tensor(`${p}attn_k.weight`, [hp.nEmbd, kvDim]),
        v: this.#tensor(`${p}attn_v.weight`, [hp.nEmbd, kvDim]),
        qBias: this.#vector(`${p}attn_q.bias`, qDim, true),
        kBias: this.#vector(`${p}attn_k.bias`, kvDim, true),
        vBias: this.#vector(`${p}attn_v.bias`, kvDim, true),
        o: this.#tensor(`${p}attn_output.weight`, [qDim, hp.nEmbd]),
        qNorm: this.spec.qkNorm === "none" ? undefined : this.#vector(`${p}attn_q_norm.weight`, qkNormLen[0]),
        kNorm: this.spec.qkNorm === "none" ? undefined : this.#vector(`${p}attn_k_norm.weight`, qkNormLen[1]),
        ffnNorm: this.#vector(`${p}ffn_norm.weight`, hp.nEmbd)!,
        router: this.#tensor(`${p}ffn_gate_inp.weight`, [hp.nEmbd, hp.nExpert]),
      };
      if (this.spec.sharedExpert) {
        layer.shared = {
          gate: this.#tensor(`${p}ffn_gate_shexp.weight`),
          up: this.#tensor(`${p}ffn_up_shexp.weight`),
          down: this.#tensor(`${p}ffn_down_shexp.weight`),
          gateInp: this.#tensor(`${p}ffn_gate_inp_shexp.weight`, [hp.nEmbd]),
        };
      }
      this.#layers.push(layer);
    }
    const kvType = opts.kvType ?? "f32";
    if (kvType !== "f32" && kvType !== "f16") {
      throw new EdgeMoeError("invalid_argument", "load model", `kvType must be "f32" or "f16", got "${kvType}"`);
    }
    const cache = () => kvType === "f16" ? new Float16Array(this.nCtx * kvDim) : new Float32Array(this.nCtx * kvDim);
    this.#kCache = this.#layers.map(cache);
    this.#vCache = this.#layers.map(cache);
  }

  #expectDims(t: TensorData, dims: readonly number[]): void {
    const ok = t.dims.length >= dims.length && dims.every((d, i) => t.dims[i] === d) &&
      t.dims.slice(dims.length).every((d) => d === 1);
    if (!ok) {
      throw new EdgeMoeError("corrupt_data", "load model", `tensor ${t.name} has dims [${t.dims}], expected [${dims}]`);
    }
  }

  #tensor(name: string, dims?: readonly number[]): TensorData {
    const t = this.#w.tensor(name);
    if (!t) throw new EdgeMoeError("corrupt_data", "load model", `tensor ${name} is missing`);
    if (dims) this.#expectDims(t, dims);
    return t;
  }

  #vector(name: string, n: number, optional = false): Float32Array | undefined {
    const t = this.#w.tensor(name);
    if (!t) {
      if (optional) return undefined;
      throw new EdgeMoeError("corrupt_data", "load model", `tensor ${name} is missing`);
    }
    this.#expectDims(t, [n]);
    const out = new Float32Array(n);
    dequantizeRow(this.#lib, t, 0, out);
    return out;
  }

  /**
   * Runs `token` at position `pos` (which must be the number of tokens already
   * evaluated in this sequence) and returns the logits over the vocabulary.
   *
   * @throws {EdgeMoeError} `invalid_argument` for a token id out of range or a position past the context.
   */
  forward(token: number, pos: number): Float32Array {
    const hp = this.hp;
    if (!Number.isInteger(token) || token < 0 || token >= hp.nVocab) {
      throw new EdgeMoeError(
        "invalid_argument",
        "forward",
        `token id ${token} is outside the vocabulary 0..${hp.nVocab - 1}`,
      );
    }
    if (!Number.isInteger(pos) || pos < 0 || pos >= this.nCtx) {
      throw new EdgeMoeError(
        "invalid_argument",
        "forward",
        `position ${pos} is outside the context 0..${this.nCtx - 1}`,
      );
    }
    const x = new Float32Array(hp.nEmbd);
    dequantizeRow(this.#lib, this.#embd, token, x);
    const n = new Float32Array(hp.nEmbd);
    this.#routed = [];
    for (let l = 0; l < hp.nLayer; l++) {
      const L = this.#layers[l];
      this.#lib.rmsNorm(x, L.attnNorm, hp.eps, n);
      addInPlace(x, this.#attention(l, L, n, 1, pos));
      this.#experts.poll?.();
      this.#lib.rmsNorm(x, L.ffnNorm, hp.eps, n);
      addInPlace(x, this.#moe(l, L, n));
    }
    this.#lib.rmsNorm(x, this.#outputNorm, hp.eps, n);
    const logits = new Float32Array(hp.nVocab);
    this.#mv(this.#output, n, logits);
    return logits;
  }

  /**
   * Runs a prompt chunk: `tokens` at positions `pos0`, `pos0 + 1`, … and
   * returns the logits after the last. Layer by layer, every routed expert is
   * fetched once for all the chunk's tokens that use it (in groups the expert
   * source can hold at once), and each token's expert outputs are summed in the
   * same order as {@linkcode MoeModel.forward} does, so the logits are
   * bit-identical to running `forward` token by token.
   *
   * @throws {EdgeMoeError} `invalid_argument` for a token id out of range or positions past the context.
   */
  forwardBatch(tokens: ArrayLike<number>, pos0: number): Float32Array {
    const hp = this.hp, T = tokens.length;
    if (T === 0) throw new EdgeMoeError("invalid_argument", "forward", "no tokens given");
    if (!Number.isInteger(pos0) || pos0 < 0 || pos0 + T > this.nCtx) {
      throw new EdgeMoeError(
        "invalid_argument",
        "forward",
        `positions ${pos0}..${pos0 + T - 1} are outside the context 0..${this.nCtx - 1}`,
      );
    }
    const d = hp.nEmbd;
    const xs = new Float32Array(T * d);
    for (let t = 0; t < T; t++) {
      const id = tokens[t];
      if (!Number.isInteger(id) || id < 0 || id >= hp.nVocab) {
        throw new EdgeMoeError(
          "invalid_argument",
          "forward",
          `token id ${id} is outside the vocabulary 0..${hp.nVocab - 1}`,
        );
      }
      dequantizeRow(this.#lib, this.#embd, id, xs.subarray(t * d, (t + 1) * d));
    }
    const row = (a: Float32Array, t: number, width = d) => a.subarray(t * width, (t + 1) * width);
    const ns = new Float32Array(T * d);
    const routes: Uint32Array[][] = Array.from({ length: T }, () => []);
    const capacity = this.#experts.capacity ?? Infinity;
    for (let l = 0; l < hp.nLayer; l++) {
      const L = this.#layers[l];
      this.#lib.rmsNorm(xs, L.attnNorm, hp.eps, ns, d);
      addInPlace(xs, this.#attention(l, L, ns, T, pos0));
      this.#lib.rmsNorm(xs, L.ffnNorm, hp.eps, ns, d);
      const logits = new Float32Array(T * hp.nExpert);
      this.#mm(L.router, ns, logits, T);
      const routing = routes.map((r, t) => {
        const out = this.#router(row(logits, t, hp.nExpert));
        r[l] = out.ids;
        return out;
      });
      // Which (token, rank) pairs each expert serves; each expert's weights are used once per chunk.
      const users = new Map<number, [number, number][]>();
      routing.forEach((r, t) => {
        r.ids.forEach((id, i) => {
          const u = users.get(id);
          if (u) u.push([t, i]);
          else users.set(id, [[t, i]]);
        });
      });
      const ys: Float32Array[][] = routing.map((r) => new Array(r.ids.length));
      const ids = [...users.keys()].sort((a, b) => a - b);
      const group = Math.max(1, Math.min(ids.length, capacity));
      // Pipeline: while this layer's experts compute, read those the next layer's router picks on these
      // inputs — only when this layer's experts are all held at once (a prefetch could evict the rest).
      const prefetchNext = ids.length <= capacity && this.#predictor?.name !== "none" && l + 1 < hp.nLayer
        ? () => this.#experts.prefetch(l + 1, this.#lookaheadVotes(l + 1, ns, T))
        : undefined;
      for (let g = 0; g < ids.length; g += group) {
        const chunk = new Uint32Array(ids.slice(g, g + group));
        using lease = this.#experts.acquire(l, chunk, g === 0 ? prefetchNext : undefined);
        // Gather each expert's tokens into one matrix; all the group's experts run in one pass; each
        // token gets its row of its experts' outputs.
        const served = [...chunk].map((id) => users.get(id)!);
        const inputs = served.map((sv) => {
          const m = new Float32Array(sv.length * d);
          sv.forEach(([t], j) => m.set(row(ns, t), j * d));
          return m;
        });
        const outs = this.#expertFfns(lease.experts, inputs, served.map((sv) => sv.length));
        served.forEach((sv, k) => sv.forEach(([t, i], j) => (ys[t][i] = row(outs[k], j))));
      }
      const out = new Float32Array(T * d);
      for (let t = 0; t < T; t++) {
        const o = row(out, t);
        routing[t].weights.forEach((w, i) => {
          const y = ys[t][i];
          for (let j = 0; j < d; j++) o[j] += w * y[j];
        });
      }
      if (L.shared) this.#addShared(L.shared, ns, out, T);
      addInPlace(xs, out);
    }
    if (this.#onRoute) { for (const r of routes) r.forEach((ids, l) => this.#onRoute!(l, ids)); }
    const n = new Float32Array(d);
    this.#lib.rmsNorm(row(xs, T - 1), this.#outputNorm, hp.eps, n);
    const logits = new Float32Array(hp.nVocab);
    this.#mv(this.#output, n, logits);
    return logits;
  }

  /** Experts `layer`'s router picks for any of the `T` rows of `inputs`, the most picked first. */
  #lookaheadVotes(layer: number, inputs: Float32Array, T: number): Uint32Array {
    const votes = new Map<number, number>();
    const E = this.hp.nExpert;
    const logits = new Float32Array(T * E);
    this.#mm(this.#layers[layer].router, inputs, logits, T);
    for (let t = 0; t < T; t++) {
      for (const id of topK(logits.subarray(t * E, (t + 1) * E), this.hp.nExpertUsed)) {
        votes.set(id, (votes.get(id) ?? 0) + 1);
      }
    }
    return Uint32Array.from([...votes].sort((a, b) => b[1] - a[1] || a[0] - b[0]).map(([id]) => id));
  }

  #mv(w: TensorData, x: Float32Array, y: Float32Array): void {
    matmul(this.#lib, w, x, y, 1, this.#pool);
  }

  #mm(w: TensorData, x: Float32Array, y: Float32Array, nTokens: number): void {
    matmul(this.#lib, w, x, y, nTokens, this.#pool);
  }

  /**
   * Self-attention of `T` tokens at positions `pos0…` whose normalized inputs
   * are the rows of `ns` (`T × nEmbd`): projections for all tokens at once,
   * then each token's K/V enter the cache and each token attends to the cache
   * up to its own position. Returns `Wo · heads`, `T × nEmbd`.
   */
  #attention(l: number, L: LayerWeights, ns: Float32Array, T: number, pos0: number): Float32Array {
    const hp = this.hp;
    const hd = hp.headDim, qDim = hp.nHead * hd, kvDim = hp.nHeadKv * hd;
    const qs = new Float32Array(T * qDim), ks = new Float32Array(T * kvDim), vs = new Float32Array(T * kvDim);
    matmulMany(this.#lib, [
      { w: L.q, x: ns, y: qs, nTokens: T },
      { w: L.k, x: ns, y: ks, nTokens: T },
      { w: L.v, x: ns, y: vs, nTokens: T },
    ], this.#pool);
    for (let t = 0; t < T; t++) {
      if (L.qBias) addInPlace(qs.subarray(t * qDim, (t + 1) * qDim), L.qBias);
      if (L.kBias) addInPlace(ks.subarray(t * kvDim, (t + 1) * kvDim), L.kBias);
      if (L.vBias) addInPlace(vs.subarray(t * kvDim, (t + 1) * kvDim), L.vBias);
    }
    if (this.spec.qkNorm !== "none") {
      const perHead = this.spec.qkNorm === "head";
      this.#lib.rmsNorm(qs, L.qNorm, hp.eps, qs, perHead ? hd : qDim);
      this.#lib.rmsNorm(ks, L.kNorm, hp.eps, ks, perHead ? hd : kvDim);
    }
    const positions = Int32Array.from({ length: T }, (_, t) => pos0 + t);
    const mode = this.spec.rope === "neox" ? "neox" : "norm";
    this.#lib.rope(qs, positions, { nHeads: hp.nHead, headDim: hd, nDims: hp.ropeDim, base: hp.ropeBase, mode });
    this.#lib.rope(ks, positions, { nHeads: hp.nHeadKv, headDim: hd, nDims: hp.ropeDim, base: hp.ropeBase, mode });
    const kc = this.#kCache[l], vc = this.#vCache[l];
    kc.set(ks, pos0 * kvDim);
    vc.set(vs, pos0 * kvDim);
    const heads = new Float32Array(T * qDim);
    const scale = Math.fround(1 / Math.sqrt(hd));
    for (let t = 0; t < T; t++) {
      const nKv = pos0 + t + 1;
      this.#lib.attention(
        qs.subarray(t * qDim, (t + 1) * qDim),
        kc.subarray(0, nKv * kvDim),
        vc.subarray(0, nKv * kvDim),
        heads.subarray(t * qDim, (t + 1) * qDim),
        { nHead: hp.nHead, nHeadKv: hp.nHeadKv, headDim: hd, nKv, scale },
        nKv * qDim >= ATTENTION_POOL_MIN_MACS ? this.#pool : undefined,
      );
    }
    const o = new Float32Array(T * hp.nEmbd);
    this.#mm(L.o, heads, o, T);
    return o;
  }

  /**
   * SwiGLU experts `down(silu(gate·x) ⊙ up·x)`, expert k on the `T[k]` tokens
   * (rows) of `x[k]`; returns each expert's `T[k] × nEmbd` outputs. Every
   * gate and up projection runs in one pass over the pool, then every down
   * projection in another (`matmulMany`): the same bits as one matmul each.
   */
  #expertFfns(experts: readonly ExpertWeights[], x: readonly Float32Array[], T: readonly number[]): Float32Array[] {
    const d = this.hp.nEmbd;
    const f = experts.map((e, k) => matrixShape(e.gate).rows * T[k]);
    const g = splitBuffer(f), u = splitBuffer(f);
    matmulMany(
      this.#lib,
      experts.flatMap((e, k) => [
        { w: e.gate, x: x[k], y: g.views[k], nTokens: T[k] },
        { w: e.up, x: x[k], y: u.views[k], nTokens: T[k] },
      ]),
      this.#pool,
    );
    this.#experts.poll?.();
    this.#lib.swiglu(g.all, u.all, g.all);
    const outs = splitBuffer(T.map((n) => d * n)).views;
    matmulMany(
      this.#lib,
      experts.map((e, k) => ({ w: e.down, x: g.views[k], y: outs[k], nTokens: T[k] })),
      this.#pool,
    );
    this.#experts.poll?.();
    return outs;
  }

  #moe(l: number, L: LayerWeights, n: Float32Array): Float32Array {
    const logits = new Float32Array(this.hp.nExpert);
    this.#mv(L.router, n, logits);
    const { ids, weights } = this.#router(logits);
    this.#onRoute?.(l, ids);
    this.#routed[l] = ids;
    this.#predictor?.observe(l, ids);
    const out = new Float32Array(this.hp.nEmbd);
    {
      // Pipeline: once this layer's experts are pinned and their reads started, start reading the
      // next layer's guesses, so they arrive while this layer's reads, its experts and the next
      // attention run.
      let predicted = false;
      const prefetchNext = () => {
        predicted = true;
        if (!this.#predictor || l + 1 >= this.hp.nLayer) return;
        const next = this.#layers[l + 1];
        let cached: Float32Array | undefined;
        const guess = this.#predictor.predict(l + 1, {
          hidden: n,
          routed: this.#routed,
          routerLogits: () => {
            if (!cached) {
              cached = new Float32Array(this.hp.nExpert);
              this.#mv(next.router, n, cached);
            }
            return cached;
          },
        });
        if (guess.length > 0) this.#experts.prefetch(l + 1, guess);
      };
      using lease = this.#experts.acquire(l, ids, prefetchNext);
      if (!predicted) prefetchNext();
      const ys = this.#expertFfns(lease.experts, lease.experts.map(() => n), lease.experts.map(() => 1));
      ys.forEach((y, i) => {
        const w = weights[i];
        for (let j = 0; j < out.length; j++) out[j] += w * y[j];
      });
    }
    if (L.shared) this.#addShared(L.shared, n, out, 1);
    return out;
  }

  /** Adds the shared expert's output, scaled by its sigmoid gate, to each of the `T` rows of `out`. */
  #addShared(sh: NonNullable<LayerWeights["shared"]>, ns: Float32Array, out: Float32Array, T: number): void {
    const gl = new Float32Array(T);
    this.#mm(sh.gateInp, ns, gl, T);
    const [y] = this.#expertFfns([sh], [ns], [T]);
    const d = this.hp.nEmbd;
    for (let t = 0; t < T; t++) {
      const gate = 1 / (1 + Math.exp(-gl[t]));
      for (let j = 0; j < d; j++) out[t * d + j] += gate * y[t * d + j];
    }
  }
}
