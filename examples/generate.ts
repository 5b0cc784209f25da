/**
 * Generate text with the library API: a model file, a memory budget, a prompt.
 *
 *   deno run --allow-ffi --allow-read --allow-env examples/generate.ts MODEL.gguf "Once upon a time" [BUDGET]
 *
 * With a budget smaller than the model, experts stay on disk and are read
 * (io_uring, O_DIRECT) only when the router picks them.
 */
import { createEngine, Sampler } from "../mod.ts";

const [model, prompt = "Once upon a time", budget] = Deno.args;
if (!model) {
  console.error("usage: examples/generate.ts MODEL.gguf [PROMPT] [MEM_BUDGET]");
  Deno.exit(2);
}
using engine = createEngine(model, { memBudget: budget });
const sampler = new Sampler(engine.model.hp.nVocab, { temp: 0.7, seed: 42 });
const out = new TextEncoder();
Deno.stdout.writeSync(out.encode(prompt));
for (const t of engine.generateSync(prompt, { maxTokens: 64, sample: (logits) => sampler.sample(logits) })) {
  Deno.stdout.writeSync(out.encode(t.text));
}
const s = engine.stats();
console.log(
  `\n\n[${s.tokensEvaluated} tokens; store ${engine.store}${
    s.store ? `, expert hit rate ${(s.store.hits / (s.store.hits + s.store.misses)).toFixed(2)}` : ""
  }]`,
);
