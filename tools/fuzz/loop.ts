/**
 * The fuzz loop shared by `deno task fuzz` (in a worker, with hang
 * detection) and the short bounded run in the test suite.
 *
 * @module
 */
import { EdgeMoeError } from "../../src/errors.ts";
import { mutate, Rng } from "./mutate.ts";
import { cleanupTargets, type FuzzTarget } from "./targets.ts";

/** An input that made a target fail in a way it must not. */
export interface Finding {
  target: string;
  /** `"crash"`: an error other than EdgeMoeError was thrown. */
  kind: "crash" | "hang" | "memory";
  error: string;
  input: Uint8Array;
}

/** Options of {@linkcode fuzzLoop}. */
export interface LoopOptions {
  iterations: number;
  seed: number;
  /** Called before each input runs (the worker publishes it for hang reports). */
  before?: (input: Uint8Array, i: number) => void;
  /** Growth of RSS over the start, in bytes, that counts as unbounded allocation (default 1 GiB). */
  maxRssGrowth?: number;
}

/** Runs `target` on `iterations` mutated inputs; returns what it found. */
export function fuzzLoop(target: FuzzTarget, opts: LoopOptions): Finding[] {
  const rng = new Rng(opts.seed);
  const seeds = target.seeds();
  const findings: Finding[] = [];
  const rss0 = Deno.memoryUsage().rss;
  const maxGrowth = opts.maxRssGrowth ?? 1 << 30;
  try {
    for (let i = 0; i < opts.iterations; i++) {
      let input = seeds[rng.int(seeds.length)];
      const rounds = 1 + rng.int(4);
      for (let r = 0; r < rounds; r++) input = mutate(input, rng, seeds[rng.int(seeds.length)]);
      opts.before?.(input, i);
      try {
        target.run(input);
      } catch (e) {
        if (!(e instanceof EdgeMoeError)) {
          findings.push({ target: target.name, kind: "crash", error: String((e as Error)?.stack ?? e), input });
        }
      }
      if (Deno.memoryUsage().rss - rss0 > maxGrowth) {
        findings.push({
          target: target.name,
          kind: "memory",
          error: `RSS grew by more than ${maxGrowth} bytes`,
          input,
        });
        break;
      }
    }
  } finally {
    cleanupTargets();
  }
  return findings;
}

/** Runs one saved input; returns the finding or undefined if it is handled. */
export function replay(target: FuzzTarget, input: Uint8Array): Finding | undefined {
  try {
    target.run(input);
  } catch (e) {
    if (!(e instanceof EdgeMoeError)) {
      return { target: target.name, kind: "crash", error: String((e as Error)?.stack ?? e), input };
    }
  } finally {
    cleanupTargets();
  }
  return undefined;
}
