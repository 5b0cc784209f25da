/**
 * The determinism contract as one enumeration: on the bundled (trained) demo
 * model, every combination of store, memory budget, cache policy, predictor,
 * prefetch depth and thread count generates the same tokens — greedy ones equal to
 * llama.cpp's (tests/fixtures/demo), and sampled ones (temperature 0.8, fixed
 * seed) equal to each other.
 */
import { createEngine, type EngineOptions } from "../src/engine.ts";
import { ProfileBuilder, profileToJson } from "../src/predictor/predictor.ts";
import { Sampler } from "../src/sampler/sampler.ts";
import { assert, assertEquals } from "../src/std/assert.ts";

const MODEL = new URL("../models/demo/edgemoe-demo-q8_0.gguf", import.meta.url).pathname;
const ref = JSON.parse(Deno.readTextFileSync(new URL("./fixtures/demo/greedy.json", import.meta.url))).prompts[0] as {
  prompt_ids: number[];
  greedy_ids: number[];
};
const N = 16;

function smallestBudget(store: string): number {
  try {
    createEngine(MODEL, { store: store as EngineOptions["store"], memBudget: 1 << 20 }).close();
  } catch (e) {
    return Number(/smallest budget that works is (\d+) bytes/.exec((e as Error).message)![1]);
  }
  throw new Error("a 1 MiB budget was accepted");
}

function run(opts: EngineOptions, temp: number): number[] {
  using engine = createEngine(MODEL, opts);
  const sampler = new Sampler(engine.model.hp.nVocab, { temp, seed: 1234 });
  return [...engine.generateSync(ref.prompt_ids, { maxTokens: N, stopAtEog: false, sample: (l) => sampler.sample(l) })]
    .filter((t) => t.id >= 0).map((t) => t.id);
}

Deno.test("determinism: the same tokens for every store × budget × policy × predictor × depth × thread count", () => {
  const dir = Deno.makeTempDirSync();
  const profile = `${dir}/profile.json`;
  {
    const b = new ProfileBuilder(4, 16);
    using engine = createEngine(MODEL, { store: "ram", onRoute: (l, ids) => b.record(l, ids) });
    engine.evaluate(
      engine.tokenizer.encode(
        Deno.readTextFileSync(new URL("../models/demo/calibration.txt", import.meta.url)).slice(0, 4000),
      ).slice(0, 250),
    );
    Deno.writeTextFileSync(profile, profileToJson(b.profile()));
  }
  const combos: EngineOptions[] = [{ store: "ram", threads: 1 }, { store: "ram", threads: 2 }];
  for (const store of ["uring", "pread", "mmap"] as const) {
    const smallest = smallestBudget(store);
    for (const memBudget of [smallest, smallest + (1 << 20)]) {
      for (const cachePolicy of ["lru", "lfu", "edgemoe"]) {
        for (const predictor of ["none", "lookahead", "table", "combined"] as const) {
          for (const threads of [1, 2]) combos.push({ store, memBudget, cachePolicy, predictor, profile, threads });
        }
      }
    }
    // Prefetch depths from one expert to all 16, where the budget leaves room to prefetch.
    for (const predictor of ["lookahead", "table", "combined"] as const) {
      for (const prefetchDepth of [1, 3, 16]) {
        combos.push({ store, memBudget: smallest + (1 << 20), predictor, profile, prefetchDepth, threads: 1 });
      }
    }
  }
  const greedyRef = ref.greedy_ids.slice(0, N);
  let sampledRef: number[] | undefined;
  for (const opts of combos) {
    const what = JSON.stringify({ ...opts, profile: undefined });
    assertEquals(run(opts, 0), greedyRef, `greedy, ${what}`);
    const sampled = run(opts, 0.8);
    sampledRef ??= sampled;
    assertEquals(sampled, sampledRef, `sampled, ${what}`);
  }
  console.log(`  ${combos.length} combinations × (greedy + sampled), ${N} tokens each: identical`);
  assert(combos.length === 173);
  Deno.removeSync(dir, { recursive: true });
});
