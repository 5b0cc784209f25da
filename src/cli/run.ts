/**
 * `edgemoe run -m MODEL -p PROMPT [-n N] [sampling] [model flags]`: generates
 * text from a prompt and streams it to stdout, like llama.cpp's `llama-cli -no-cnv`.
 *
 * @module
 */
import { createEngine } from "../engine.ts";
import { Sampler } from "../sampler/sampler.ts";
import { parseArgs } from "../std/cli.ts";
import { formatSize } from "../store/budget.ts";
import {
  ENGINE_ALIASES,
  ENGINE_FLAGS,
  ENGINE_HELP,
  engineOptions,
  intFlag,
  SAMPLER_FLAGS,
  SAMPLER_HELP,
  samplerParams,
  stringFlag,
} from "./flags.ts";

const USAGE = `usage: edgemoe run -m MODEL -p PROMPT [-n N] [--stats] [flags]

Generates up to N tokens (default 128) after PROMPT and streams the text to stdout.
  -p, --prompt TEXT        the prompt (BOS added as the model asks)
  -f, --file FILE          read the prompt from FILE
  -n, --n-predict N        tokens to generate (default 128)
  --ignore-eos             keep going past end-of-generation tokens
  --stats                  print speed, expert cache and prefetch statistics to stderr

${ENGINE_HELP}

${SAMPLER_HELP}`;

/** Runs `edgemoe run`. */
export function run(argv: string[]): number {
  const a = parseArgs(argv, {
    string: [...ENGINE_FLAGS, ...SAMPLER_FLAGS, "prompt", "file", "n-predict"],
    boolean: ["help", "stats", "ignore-eos"],
    alias: { ...ENGINE_ALIASES, p: "prompt", f: "file", n: "n-predict", h: "help" },
  });
  if (a.help) {
    console.log(USAGE);
    return 0;
  }
  const model = stringFlag(a, "model", USAGE);
  const prompt = typeof a.file === "string" ? Deno.readTextFileSync(a.file) : stringFlag(a, "prompt", USAGE);
  const n = intFlag(a, "n-predict", 128, 0);
  const params = samplerParams(a);
  using engine = createEngine(model, engineOptions(a));
  const sampler = new Sampler(engine.model.hp.nVocab, params, { contextSize: engine.model.nCtx });
  const out = new TextEncoder();
  const t0 = performance.now();
  let first = 0, count = 0;
  for (
    const t of engine.generateSync(prompt, {
      maxTokens: n,
      sample: (l) => sampler.sample(l),
      stopAtEog: !a["ignore-eos"],
    })
  ) {
    if (count === 0) first = performance.now();
    if (t.id >= 0) count++;
    Deno.stdout.writeSync(out.encode(t.text));
  }
  Deno.stdout.writeSync(out.encode("\n"));
  const end = performance.now();
  // Timings on stderr, as llama.cpp prints them; --stats adds the expert store and predictor.
  console.error(
    `prompt: ${((first - t0) / 1000).toFixed(2)} s; generation: ${count} tokens, ${
      (count > 1 ? (count - 1) / ((end - first) / 1000) : 0).toFixed(2)
    } tokens/s`,
  );
  if (a.stats) {
    const s = engine.stats();
    const lines = [
      `seed ${sampler.params.seed}; store ${engine.store}${
        engine.plan ? `, ${engine.plan.slotCount} slots of ${formatSize(engine.plan.slotBytes)}` : ""
      }`,
    ];
    if (s.store) {
      const st = s.store;
      lines.push(
        `experts: ${st.hits} hits, ${st.misses} misses (hit rate ${
          (st.hits / Math.max(1, st.hits + st.misses)).toFixed(3)
        }), ` +
          `${st.evictions} evictions, ${formatSize(st.bytesReadTotal)} read, ${
            (st.waitNsTotal / 1e6).toFixed(1)
          } ms waiting`,
      );
      lines.push(
        `prefetch: ${st.prefetches} experts, ${st.prefetchUsed} used, ${st.prefetchWasted} evicted unused (${
          formatSize(st.prefetchWastedBytes)
        } wasted), ${st.prefetchCancelled} cancelled before their read completed; per token: ${
          formatSize(st.bytesReadTotal / Math.max(1, s.tokensEvaluated))
        } read, ${(st.waitNsTotal / 1e6 / Math.max(1, s.tokensEvaluated)).toFixed(2)} ms stalled on I/O`,
      );
    }
    lines.push(`peak RSS: ${formatSize(s.peakRssBytes)} (${s.peakRssBytes} bytes)`);
    const p = s.predictor;
    if (p.predicted > 0) {
      lines.push(
        `predictor ${p.name}: precision ${(p.correct / p.predicted).toFixed(3)}, recall ${
          (p.correct / Math.max(1, p.actual)).toFixed(3)
        }; recall per layer ${p.perLayer.map((l) => (l.actual ? (l.correct / l.actual).toFixed(2) : "–")).join(" ")}`,
      );
    }
    console.error(lines.join("\n"));
  }
  return 0;
}
