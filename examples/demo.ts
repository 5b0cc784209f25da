/**
 * The demo: the bundled MoE model (models/demo, trained by tools/train on
 * public-domain text) generates text twice — once with every weight in RAM,
 * once under a memory budget so small that experts stay on disk and are read
 * (io_uring, O_DIRECT) only when the router picks them. The text is the same.
 *
 *   deno task demo ["PROMPT"]
 */
import { createEngine, type EngineOptions, formatSize, Sampler } from "../mod.ts";

const MODEL = new URL("../models/demo/edgemoe-demo-q8_0.gguf", import.meta.url).pathname;
const prompt = Deno.args[0] ?? "Call me Ishmael. Some years ago";
const out = new TextEncoder();

function generate(title: string, opts: EngineOptions): string {
  using engine = createEngine(MODEL, opts);
  const sampler = new Sampler(engine.model.hp.nVocab, { temp: 0.7, seed: 2026 });
  console.log(`\n── ${title} ──`);
  Deno.stdout.writeSync(out.encode(prompt));
  let text = "";
  const t0 = performance.now();
  for (const t of engine.generateSync(prompt, { maxTokens: 60, sample: (l) => sampler.sample(l) })) {
    text += t.text;
    Deno.stdout.writeSync(out.encode(t.text));
  }
  const s = engine.stats();
  const secs = (performance.now() - t0) / 1000;
  console.log(
    `\n[${s.tokensEvaluated} tokens in ${secs.toFixed(2)} s; store ${engine.store}` +
      (engine.plan ? `, ${engine.plan.slotCount} expert slots of ${formatSize(engine.plan.slotBytes)}` : "") +
      (s.store
        ? `; expert hit rate ${(s.store.hits / (s.store.hits + s.store.misses)).toFixed(2)}, ${
          formatSize(s.store.bytesReadTotal)
        } read from disk`
        : "") +
      `; peak RSS ${formatSize(s.peakRssBytes)}]`,
  );
  return text;
}

console.log(`edgemoe demo: ${MODEL.split("/").slice(-1)[0]} (Qwen3-MoE architecture, 4 layers × 16 experts, top-2)`);
const inRam = generate("all weights in RAM", { store: "ram" });
// A budget that holds only a few experts besides the resident weights.
const onDisk = generate("experts on disk, 100 MiB budget", {
  store: "uring",
  memBudget: "100MiB",
  predictor: "lookahead",
});
console.log(
  inRam === onDisk
    ? "\nSame text both ways: streaming experts from disk changed nothing but memory."
    : "\nMISMATCH between the two runs",
);
if (inRam !== onDisk) Deno.exit(1);
