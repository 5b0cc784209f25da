/**
 * Cache policies of the expert store: which unpinned expert to evict when a
 * slot is needed. A policy only ranks; the store never offers it a pinned
 * expert or one the current layer asked for.
 *
 * @module
 */
import { EdgeMoeError } from "../errors.ts";

/** What a policy knows about a cached expert. */
export interface CacheEntryInfo {
  layer: number;
  id: number;
  /** Times acquired since it was loaded (or since the store opened, for `lfu`/`edgemoe`: see `uses`). */
  uses: number;
  /** Logical clock of the last acquire (or load). */
  lastUse: number;
}

/** Ranks eviction candidates. */
export interface CachePolicy {
  /** Name as given to `--cache-policy`. */
  readonly name: string;
  /** Returns the candidate to evict. `layer` is the layer being computed; `nLayers` the model's depth. */
  victim(candidates: readonly CacheEntryInfo[], layer: number, nLayers: number): CacheEntryInfo;
}

function minBy(c: readonly CacheEntryInfo[], key: (e: CacheEntryInfo) => number): CacheEntryInfo {
  let best = c[0], bestKey = key(best);
  for (let i = 1; i < c.length; i++) {
    const k = key(c[i]);
    // Ties go to the least recently used, then the lowest (layer, id): deterministic.
    if (k < bestKey || (k === bestKey && c[i].lastUse < best.lastUse)) {
      best = c[i];
      bestKey = k;
    }
  }
  return best;
}

/** Least recently used. */
export const lru: CachePolicy = { name: "lru", victim: (c) => minBy(c, (e) => e.lastUse) };

/** Least frequently used (counts since the store opened). */
export const lfu: CachePolicy = { name: "lfu", victim: (c) => minBy(c, (e) => e.uses) };

/**
 * EdgeMoE's score: an expert is worth keeping in proportion to how often it is
 * used, and more so the sooner its layer runs again. With `d` the number of
 * layers until the expert's layer comes round (1 for the next layer, `L` for
 * the current one), the kept value is `uses / d`; the lowest is evicted.
 */
export const edgemoe: CachePolicy = {
  name: "edgemoe",
  victim: (c, layer, nLayers) =>
    minBy(c, (e) => {
      const d = ((e.layer - layer - 1 + nLayers) % nLayers) + 1;
      return e.uses / d;
    }),
};

/** Every policy by name. */
export const POLICIES: Readonly<Record<string, CachePolicy>> = { lru, lfu, edgemoe };

/**
 * The policy called `name`.
 *
 * @throws {EdgeMoeError} `invalid_argument` listing the known names.
 */
export function cachePolicy(name: string): CachePolicy {
  const p = POLICIES[name];
  if (!p) {
    throw new EdgeMoeError(
      "invalid_argument",
      "choose cache policy",
      `unknown policy "${name}"; known: ${Object.keys(POLICIES).join(", ")}`,
    );
  }
  return p;
}
