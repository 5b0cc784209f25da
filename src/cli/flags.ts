/**
 * Typed access to parsed CLI flags, with errors that name the flag.
 *
 * @module
 */
import { EdgeMoeError } from "../errors.ts";
import type { Args } from "../std/cli.ts";
import type { EngineOptions } from "../engine.ts";
import type { SamplerParams } from "../sampler/sampler.ts";

/** A required string flag. */
export function stringFlag(a: Args, name: string, usage: string): string {
  const v = a[name];
  if (typeof v !== "string" || v === "") {
    throw new EdgeMoeError("invalid_argument", "parse arguments", `--${name} is required\n\n${usage}`);
  }
  return v;
}

/** An optional integer flag ≥ `min`. */
export function intFlag(a: Args, name: string, fallback: number, min = 0): number {
  const v = a[name];
  if (v === undefined) return fallback;
  const n = Number(v);
  if (typeof v !== "string" || !Number.isSafeInteger(n) || n < min) {
    throw new EdgeMoeError("invalid_argument", "parse arguments", `--${name} must be an integer ≥ ${min}, got "${v}"`);
  }
  return n;
}

/** An optional number flag. */
export function numberFlag(a: Args, name: string): number | undefined {
  const v = a[name];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v !== "string" || v.trim() === "" || !Number.isFinite(n)) {
    throw new EdgeMoeError("invalid_argument", "parse arguments", `--${name} must be a number, got "${v}"`);
  }
  return n;
}

/** An optional flag restricted to `choices`. */
export function choiceFlag<T extends string>(a: Args, name: string, choices: readonly T[]): T | undefined {
  const v = a[name];
  if (v === undefined) return undefined;
  if (typeof v !== "string" || !(choices as readonly string[]).includes(v)) {
    throw new EdgeMoeError(
      "invalid_argument",
      "parse arguments",
      `--${name} must be one of ${choices.join(", ")}, got "${v}"`,
    );
  }
  return v as T;
}

/** Flags every command that loads a model takes. */
export const ENGINE_FLAGS = [
  "model",
  "threads",
  "ctx-size",
  "mem-budget",
  "store",
  "cache-policy",
  "predictor",
  "profile",
  "prefetch-depth",
  "kv-type",
];
/** Short names of {@linkcode ENGINE_FLAGS}. */
export const ENGINE_ALIASES = { m: "model", c: "ctx-size", t: "threads" } as const;

/** Help text for {@linkcode ENGINE_FLAGS}. */
export const ENGINE_HELP = `model:
  -m, --model FILE         GGUF file or pack
  -c, --ctx-size N         context length (default: the model's, at most 4096)
  -t, --threads N          compute threads (default: the number of cores; tokens are the same for any N)
  --mem-budget SIZE        bytes the process may use: 4096, 512MiB, 4G, 1.5GiB (default: 90% of available)
  --store S                ram | uring | pread | mmap (default: ram if all fits the budget, else uring)
  --cache-policy P         lru | lfu | edgemoe (default lru)
  --predictor P            none | lookahead | table | combined (default combined; none with --store ram)
  --profile FILE           routing profile for --predictor table or combined (edgemoe profile)
  --prefetch-depth N       experts to prefetch per layer (default: experts per token)
  --kv-type T              KV cache type: f32 | f16 (default f32; f16 halves its memory)`;

/** Engine options from parsed flags. */
export function engineOptions(a: Args): EngineOptions {
  const ctx = a["ctx-size"] === undefined ? undefined : intFlag(a, "ctx-size", 0, 1);
  const depth = a["prefetch-depth"] === undefined ? undefined : intFlag(a, "prefetch-depth", 0, 1);
  return {
    threads: a.threads === undefined ? undefined : intFlag(a, "threads", 1, 1),
    nCtx: ctx,
    memBudget: a["mem-budget"] as string | undefined,
    store: choiceFlag(a, "store", ["ram", "uring", "pread", "mmap"] as const),
    cachePolicy: choiceFlag(a, "cache-policy", ["lru", "lfu", "edgemoe"] as const),
    predictor: choiceFlag(a, "predictor", ["none", "lookahead", "table", "combined"] as const),
    profile: a.profile as string | undefined,
    prefetchDepth: depth,
    kvType: choiceFlag(a, "kv-type", ["f32", "f16"] as const),
  };
}

/** Sampling flags, with llama.cpp's names. */
export const SAMPLER_FLAGS = [
  "temp",
  "top-k",
  "top-p",
  "min-p",
  "repeat-penalty",
  "repeat-last-n",
  "presence-penalty",
  "frequency-penalty",
  "seed",
];

/** Help text for {@linkcode SAMPLER_FLAGS}. */
export const SAMPLER_HELP = `sampling (llama.cpp's names and defaults):
  --temp T                 temperature; 0 = greedy (default 0.8)
  --top-k K                keep the K most likely tokens; 0 = all (default 40)
  --top-p P                nucleus: keep tokens up to probability mass P (default 0.95)
  --min-p P                keep tokens with p ≥ P × the top p (default 0.05)
  --repeat-penalty X       penalise recent tokens; 1 = off (default 1.0)
  --repeat-last-n N        how many recent tokens the penalties see (default 64)
  --presence-penalty X     (default 0)
  --frequency-penalty X    (default 0)
  --seed S                 random seed (default: random)`;

/** Sampler parameters from parsed flags (validated by the sampler). */
export function samplerParams(a: Args): SamplerParams {
  return {
    temp: numberFlag(a, "temp"),
    topK: numberFlag(a, "top-k"),
    topP: numberFlag(a, "top-p"),
    minP: numberFlag(a, "min-p"),
    repeatPenalty: numberFlag(a, "repeat-penalty"),
    repeatLastN: numberFlag(a, "repeat-last-n"),
    presencePenalty: numberFlag(a, "presence-penalty"),
    frequencyPenalty: numberFlag(a, "frequency-penalty"),
    seed: numberFlag(a, "seed"),
  };
}
