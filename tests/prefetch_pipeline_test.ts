/**
 * The compute–I/O pipeline on the demo model: prefill reads the next layer's
 * look-ahead experts while a layer computes, decode reads the predictor's
 * guesses; both change which reads happen, never the logits.
 */
import { createEngine, type EngineOptions } from "../src/engine.ts";
import { assert, assertEquals } from "../src/std/assert.ts";

const MODEL = new URL("../models/demo/edgemoe-demo-q8_0.gguf", import.meta.url).pathname;
const ref = JSON.parse(Deno.readTextFileSync(new URL("./fixtures/demo/greedy.json", import.meta.url))).prompts[0] as {
  prompt_ids: number[];
};

function smallestBudget(): number {
  try {
    createEngine(MODEL, { store: "uring", memBudget: 1 << 20 }).close();
  } catch (e) {
    return Number(/smallest budget that works is (\d+) bytes/.exec((e as Error).message)![1]);
  }
  throw new Error("a 1 MiB budget was accepted");
}

Deno.test("pipeline: prefill and decode prefetches are used, and the logits are those of no prediction", () => {
  const memBudget = smallestBudget() + (4 << 20);
  const run = (opts: EngineOptions) => {
    using engine = createEngine(MODEL, { store: "uring", memBudget, threads: 1, ...opts });
    const prefill = engine.evaluate(ref.prompt_ids);
    const afterPrefill = engine.stats().store!;
    // Decode: the prompt's tokens again, one at a time.
    const decode = ref.prompt_ids.map((id) => engine.evaluate([id]));
    return { prefill, decode, afterPrefill, end: engine.stats().store! };
  };
  const base = run({ predictor: "none" });
  assertEquals(base.end.prefetches, 0);
  for (const predictor of ["lookahead", "combined"] as const) {
    const r = run({ predictor });
    assertEquals(r.prefill, base.prefill, `${predictor}: prefill logits`);
    assertEquals(r.decode, base.decode, `${predictor}: decode logits`);
    // Prefill: the next layer's look-ahead experts were read while a layer computed, and some were then routed to.
    assert(r.afterPrefill.prefetchUsed > 0, `${predictor}: ${JSON.stringify(r.afterPrefill)}`);
    assert(r.end.prefetches > r.afterPrefill.prefetches, `${predictor}: decode prefetched nothing`);
    assert(
      r.end.misses < base.end.misses,
      `${predictor}: ${r.end.misses} misses, ${base.end.misses} without prediction`,
    );
  }
});
