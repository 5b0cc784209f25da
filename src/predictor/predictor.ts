/**
 * Expert predictors: guess which experts layer l+1 will route to before its
 * router runs, so the store can start reading them while layer l computes.
 * A wrong guess costs bandwidth, never correctness: the graph always routes
 * with the real router and reads what is missing on demand.
 *
 * @module
 */
import { EdgeMoeError } from "../errors.ts";
import { topK } from "../router/router.ts";

/** What a predictor may look at when predicting `layer`. */
export interface PredictionContext {
  /** The input of the previous layer's experts (its post-attention, normalised hidden state). */
  hidden: Float32Array;
  /** Expert ids routed so far for this token, by layer (`routed[l]` for l < layer). */
  routed: readonly (Uint32Array | undefined)[];
  /** Router logits of `layer` applied to `hidden` (computed on first call; costs one small matvec). */
  routerLogits(): Float32Array;
}

/** Precision and recall of a predictor's guesses. */
export interface PredictorStats {
  /** Experts predicted. */
  predicted: number;
  /** Predicted experts the router then used. */
  correct: number;
  /** Experts the router used in predicted layers. */
  actual: number;
  /** The same three counts per layer (index = layer). */
  perLayer: { predicted: number; correct: number; actual: number }[];
}

/** Predicts the experts of the next layer. */
export interface Predictor {
  /** Name as given to `--predictor`. */
  readonly name: string;
  /** Expert ids `layer` is expected to use, most likely first (empty: no guess). */
  predict(layer: number, ctx: PredictionContext): Uint32Array;
  /** Tells the predictor what `layer` actually used, for its statistics (and learning). */
  observe(layer: number, ids: Uint32Array): void;
  /** Counters since creation. */
  stats(): PredictorStats;
}

/** Keeps precision/recall counts for any predictor. */
class Scorer {
  readonly #last = new Map<number, Uint32Array>();
  readonly counts: PredictorStats = { predicted: 0, correct: 0, actual: 0, perLayer: [] };

  #layer(l: number): PredictorStats["perLayer"][number] {
    while (this.counts.perLayer.length <= l) this.counts.perLayer.push({ predicted: 0, correct: 0, actual: 0 });
    return this.counts.perLayer[l];
  }

  record(layer: number, guess: Uint32Array): Uint32Array {
    this.#last.set(layer, guess);
    this.counts.predicted += guess.length;
    this.#layer(layer).predicted += guess.length;
    return guess;
  }

  observe(layer: number, ids: Uint32Array): void {
    const guess = this.#last.get(layer);
    if (!guess) return;
    this.#last.delete(layer);
    const per = this.#layer(layer);
    this.counts.actual += ids.length;
    per.actual += ids.length;
    for (const id of ids) {
      if (guess.includes(id)) {
        this.counts.correct++;
        per.correct++;
      }
    }
  }

  snapshot(): PredictorStats {
    return { ...this.counts, perLayer: this.counts.perLayer.map((p) => ({ ...p })) };
  }
}

/** No prediction: every expert is read on demand. */
export function noPredictor(): Predictor {
  const s = new Scorer();
  return {
    name: "none",
    predict: () => new Uint32Array(0),
    observe: (l, ids) => s.observe(l, ids),
    stats: () => s.snapshot(),
  };
}

/**
 * Look-ahead: layer l+1's router applied to layer l's expert input. Residual
 * streams change slowly, so this is a cheap, model-agnostic guess. Predicts
 * the top `depth` experts.
 */
export function lookaheadPredictor(depth: number): Predictor {
  checkDepth(depth);
  const s = new Scorer();
  return {
    name: "lookahead",
    predict: (layer, ctx) => s.record(layer, topK(ctx.routerLogits(), Math.min(depth, ctx.routerLogits().length))),
    observe: (l, ids) => s.observe(l, ids),
    stats: () => s.snapshot(),
  };
}

/**
 * EdgeMoE's statistical predictor: from a profile, the probability that
 * expert j of layer l+1 is used given expert i of layer l was; predicts the
 * `depth` experts with the highest summed probability over the experts the
 * previous layer used.
 */
export function tablePredictor(profile: RoutingProfile, depth: number): Predictor {
  checkDepth(depth);
  const s = new Scorer();
  const E = profile.nExperts;
  return {
    name: "table",
    predict(layer, ctx) {
      const prev = ctx.routed[layer - 1];
      if (layer === 0 || !prev || layer >= profile.nLayers) return s.record(layer, new Uint32Array(0));
      const score = new Float32Array(E);
      const co = profile.transitions[layer - 1];
      for (const i of prev) {
        const row = co.subarray(i * E, (i + 1) * E);
        let total = 0;
        for (const c of row) total += c;
        if (total === 0) continue;
        for (let j = 0; j < E; j++) score[j] += row[j] / total;
      }
      // Fall back to overall frequency where no transition was seen.
      const freq = profile.frequency[layer];
      let ftotal = 0;
      for (const f of freq) ftotal += f;
      if (ftotal > 0) { for (let j = 0; j < E; j++) score[j] += 1e-3 * freq[j] / ftotal; }
      return s.record(layer, topK(score, Math.min(depth, E)));
    },
    observe: (l, ids) => s.observe(l, ids),
    stats: () => s.snapshot(),
  };
}

/** Blends of look-ahead (weight w) and table (1 − w) scores the combined predictor chooses from. */
const BLENDS = [0, 0.25, 0.5, 0.75, 1];

/**
 * Look-ahead and table combined. Each layer's guess is the top `depth` of
 * `w·softmax(next router's logits) + (1 − w)·P(expert | previous layer's
 * experts)`, where the blend weight w is, per layer, the one of
 * {@linkcode BLENDS} whose guesses would have been right most often so far
 * (look-ahead alone until there is evidence). The transition table starts from
 * `profile` when one is given and keeps counting what the model routes, so
 * without a profile it is learned while decoding.
 */
export function combinedPredictor(
  depth: number,
  nLayers: number,
  nExperts: number,
  profile?: RoutingProfile,
): Predictor {
  checkDepth(depth);
  const E = nExperts;
  if (profile && (profile.nLayers !== nLayers || profile.nExperts !== nExperts)) {
    throw new EdgeMoeError(
      "invalid_argument",
      "create predictor",
      `profile is for ${profile.nLayers} layers × ${profile.nExperts} experts, the model has ${nLayers} × ${nExperts}`,
    );
  }
  const s = new Scorer();
  const transitions = Array.from(
    { length: Math.max(0, nLayers - 1) },
    (_, l) => profile ? Float64Array.from(profile.transitions[l]) : new Float64Array(E * E),
  );
  const hits = Array.from({ length: nLayers }, () => new Float64Array(BLENDS.length));
  const candidates = new Map<number, Uint32Array[]>();
  const routed: (Uint32Array | undefined)[] = new Array(nLayers);
  const lookahead = new Float32Array(E), table = new Float32Array(E), blend = new Float32Array(E);
  return {
    name: "combined",
    predict(layer, ctx) {
      const logits = ctx.routerLogits();
      let max = -Infinity;
      for (const v of logits) max = Math.max(max, v);
      let z = 0;
      for (let j = 0; j < E; j++) z += lookahead[j] = Math.exp(logits[j] - max);
      for (let j = 0; j < E; j++) lookahead[j] /= z;
      table.fill(0);
      const prev = layer > 0 ? ctx.routed[layer - 1] : undefined;
      if (prev && prev.length > 0) {
        const co = transitions[layer - 1];
        for (const i of prev) {
          let total = 0;
          for (let j = 0; j < E; j++) total += co[i * E + j];
          if (total > 0) { for (let j = 0; j < E; j++) table[j] += co[i * E + j] / (total * prev.length); }
        }
      }
      const guesses = BLENDS.map((w) => {
        for (let j = 0; j < E; j++) blend[j] = w * lookahead[j] + (1 - w) * table[j];
        return topK(blend, Math.min(depth, E));
      });
      candidates.set(layer, guesses);
      // The blend right most often so far; ties go to the larger look-ahead weight.
      const h = hits[layer];
      let best = BLENDS.length - 1;
      for (let b = BLENDS.length - 2; b >= 0; b--) if (h[b] > h[best]) best = b;
      return s.record(layer, guesses[best]);
    },
    observe(layer, ids) {
      s.observe(layer, ids);
      const guesses = candidates.get(layer);
      if (guesses) {
        candidates.delete(layer);
        guesses.forEach((g, b) => {
          for (const id of ids) if (g.includes(id)) hits[layer][b]++;
        });
      }
      const prev = layer > 0 ? routed[layer - 1] : undefined;
      if (prev) {
        const co = transitions[layer - 1];
        for (const i of prev) for (const j of ids) co[i * E + j]++;
      }
      routed[layer] = ids;
    },
    stats: () => s.snapshot(),
  };
}

function checkDepth(depth: number): void {
  if (!Number.isInteger(depth) || depth < 1) {
    throw new EdgeMoeError(
      "invalid_argument",
      "create predictor",
      `prefetch depth must be an integer ≥ 1, got ${depth}`,
    );
  }
}

/** Routing statistics of a model on some text (`edgemoe profile`). */
export interface RoutingProfile {
  nLayers: number;
  nExperts: number;
  /** Tokens profiled. */
  tokens: number;
  /** `frequency[l][e]`: tokens that routed to expert e of layer l. */
  frequency: Float64Array[];
  /** `transitions[l][i·E + j]`: tokens that used expert i in layer l and expert j in layer l+1. */
  transitions: Float64Array[];
}

/** Collects a {@linkcode RoutingProfile} from routing events. */
export class ProfileBuilder {
  readonly #p: RoutingProfile;
  #prev: Uint32Array | undefined;

  constructor(nLayers: number, nExperts: number) {
    this.#p = {
      nLayers,
      nExperts,
      tokens: 0,
      frequency: Array.from({ length: nLayers }, () => new Float64Array(nExperts)),
      transitions: Array.from({ length: Math.max(0, nLayers - 1) }, () => new Float64Array(nExperts * nExperts)),
    };
  }

  /** Records that `layer` routed the current token to `ids` (layers arrive in order for each token). */
  record(layer: number, ids: Uint32Array): void {
    const p = this.#p, E = p.nExperts;
    if (layer === 0) p.tokens++;
    for (const id of ids) p.frequency[layer][id]++;
    if (layer > 0 && this.#prev) {
      const t = p.transitions[layer - 1];
      for (const i of this.#prev) for (const j of ids) t[i * E + j]++;
    }
    this.#prev = ids;
  }

  /** The profile so far. */
  profile(): RoutingProfile {
    return this.#p;
  }
}

const PROFILE_FORMAT = "edgemoe.routing-profile";
const PROFILE_VERSION = 1;
const MAX_PROFILE_EXPERTS = 1024, MAX_PROFILE_LAYERS = 1024;

/** Serialises a profile as compact, versioned JSON (counts as integer arrays). */
export function profileToJson(p: RoutingProfile): string {
  return JSON.stringify({
    format: PROFILE_FORMAT,
    version: PROFILE_VERSION,
    nLayers: p.nLayers,
    nExperts: p.nExperts,
    tokens: p.tokens,
    frequency: p.frequency.map((f) => [...f]),
    transitions: p.transitions.map((t) => [...t]),
  });
}

/**
 * Parses and validates a profile.
 *
 * @throws {EdgeMoeError} `corrupt_data` naming the field at fault, `unsupported` for another version.
 */
export function profileFromJson(text: string, source = "profile"): RoutingProfile {
  const op = `read ${source}`;
  const bad = (why: string) => new EdgeMoeError("corrupt_data", op, why);
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new EdgeMoeError("corrupt_data", op, `not JSON: ${(e as Error).message}`, { cause: e });
  }
  if (typeof raw !== "object" || raw === null || raw.format !== PROFILE_FORMAT) {
    throw bad(`"format" must be "${PROFILE_FORMAT}"`);
  }
  if (raw.version !== PROFILE_VERSION) {
    throw new EdgeMoeError("unsupported", op, `profile version ${raw.version}, expected ${PROFILE_VERSION}`);
  }
  const int = (k: string, max: number) => {
    const v = raw[k];
    if (!Number.isSafeInteger(v) || (v as number) < 0 || (v as number) > max) {
      throw bad(`"${k}" must be an integer in 0..${max}, got ${JSON.stringify(v)}`);
    }
    return v as number;
  };
  const nLayers = int("nLayers", MAX_PROFILE_LAYERS), nExperts = int("nExperts", MAX_PROFILE_EXPERTS);
  const tokens = int("tokens", Number.MAX_SAFE_INTEGER);
  const counts = (k: string, rows: number, len: number): Float64Array[] => {
    const v = raw[k];
    if (!Array.isArray(v) || v.length !== rows) throw bad(`"${k}" must be an array of ${rows} rows`);
    return v.map((row, i) => {
      if (!Array.isArray(row) || row.length !== len) throw bad(`"${k}"[${i}] must have ${len} counts`);
      for (const c of row) {
        if (!Number.isSafeInteger(c) || c < 0) throw bad(`"${k}"[${i}] holds ${JSON.stringify(c)}, not a count`);
      }
      return Float64Array.from(row);
    });
  };
  return {
    nLayers,
    nExperts,
    tokens,
    frequency: counts("frequency", nLayers, nExperts),
    transitions: counts("transitions", Math.max(0, nLayers - 1), nExperts * nExperts),
  };
}
