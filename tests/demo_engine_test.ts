/**
 * The bundled demo model through the engine: the same greedy tokens as
 * llama.cpp (tests/fixtures/demo, computed by tools/train/verify_llama.ts on
 * the shipped Q8_0 file), the same last-position logits (within 1e-4; about 2e-6 measured),
 * whatever the store and memory budget.
 */
import { createEngine, type EngineOptions } from "../src/engine.ts";
import { assert, assertEquals } from "../src/std/assert.ts";

const MODEL = new URL("../models/demo/edgemoe-demo-q8_0.gguf", import.meta.url).pathname;
const FIX = new URL("./fixtures/demo/", import.meta.url);
const ref = JSON.parse(Deno.readTextFileSync(new URL("greedy.json", FIX))) as {
  prompts: {
    prompt: string;
    prompt_ids: number[];
    last_logits_file: string;
    greedy_ids: number[];
    greedy_text: string;
  }[];
};

const setups: [string, EngineOptions][] = [
  ["ram, 1 thread", { store: "ram", threads: 1 }],
  ["ram, 3 threads", { store: "ram", threads: 3 }],
  ["uring at the smallest budget", { store: "uring", memBudget: 0 }],
  ["pread at the smallest budget, lfu", { store: "pread", memBudget: 0, cachePolicy: "lfu" }],
];

for (const [name, opts] of setups) {
  Deno.test(`demo model (${name}): llama.cpp's prompt ids, last logits and greedy tokens`, () => {
    // Budget 0 means: the smallest that works, found from the engine's own error.
    let o = opts;
    if (opts.memBudget === 0) {
      try {
        createEngine(MODEL, { ...opts, memBudget: 1 << 20 }).close();
      } catch (e) {
        o = { ...opts, memBudget: Number(/smallest budget that works is (\d+) bytes/.exec((e as Error).message)![1]) };
      }
    }
    using engine = createEngine(MODEL, o);
    for (const p of ref.prompts) {
      engine.reset();
      const ids = [...engine.tokenizer.encode(p.prompt)];
      assertEquals(ids, p.prompt_ids, `tokenization of ${JSON.stringify(p.prompt)}`);
      const logits = engine.evaluate(ids);
      const want = new Float32Array(Deno.readFileSync(new URL(p.last_logits_file, FIX)).buffer);
      let max = 0;
      for (let i = 0; i < want.length; i++) max = Math.max(max, Math.abs(logits[i] - want[i]));
      console.log(`  ${JSON.stringify(p.prompt)}: max |Δ logit| ${max.toExponential(2)}`);
      assert(max < 1e-4, `${p.prompt}: max |Δ| ${max}`);
      engine.reset();
      const out = [...engine.generateSync(p.prompt_ids, { maxTokens: p.greedy_ids.length, stopAtEog: false })].filter((
        t,
      ) => t.id >= 0);
      assertEquals(out.map((t) => t.id), p.greedy_ids);
      assertEquals(out.map((t) => t.text).join(""), p.greedy_text);
    }
    if (o.store !== "ram") assert(engine.stats().store!.evictions > 0, "the smallest budget evicts experts");
  });
}
