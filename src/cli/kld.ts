/**
 * `edgemoe kld -m MODEL --base BASE -f TEXT [-c CTX]`: KL divergence of a
 * model's next-token distributions from a base model's over the perplexity
 * windows (as llama.cpp's `--kl-divergence`).
 *
 * @module
 */
import { createEngine } from "../engine.ts";
import { modelLogits } from "../plan/measure.ts";
import { baseLogProbs, kld as measureKld } from "../quality/quality.ts";
import { parseArgs } from "../std/cli.ts";
import { intFlag, stringFlag } from "./flags.ts";
import { progress, textWindows } from "./perplexity.ts";

const USAGE = `usage: edgemoe kld -m MODEL --base BASE_MODEL -f TEXT [-c CTX] [--chunks N]

Evaluates BASE_MODEL and MODEL on the same windows of TEXT (as edgemoe perplexity) and prints
the mean KL(base ‖ model) ± its standard error, its 99th percentile and maximum, how often the
two agree on the most likely token, and both perplexities. Progress goes to stderr. The base's
log-probabilities are held in memory: vocabulary × scored positions × 8 bytes (bound it with --chunks).`;

/** Runs `edgemoe kld`. */
export function kld(argv: string[]): number {
  const a = parseArgs(argv, {
    string: ["model", "base", "file", "ctx-size", "chunks"],
    boolean: ["help"],
    alias: { m: "model", f: "file", c: "ctx-size", h: "help" },
  });
  if (a.help) {
    console.log(USAGE);
    return 0;
  }
  const model = stringFlag(a, "model", USAGE), basePath = stringFlag(a, "base", USAGE);
  const file = stringFlag(a, "file", USAGE);
  const ctx = intFlag(a, "ctx-size", 512, 4);
  const chunks = intFlag(a, "chunks", Infinity, 1);
  const base = (() => {
    using engine = createEngine(basePath, { nCtx: ctx, predictor: "none" });
    const w = textWindows(engine.tokenizer, file, ctx, chunks);
    return baseLogProbs(modelLogits(engine.model), w, (d, t) => progress("kld base", d, t, " windows"));
  })();
  using engine = createEngine(model, { nCtx: ctx, predictor: "none" });
  const r = measureKld(modelLogits(engine.model), base, (d, t) => progress("kld model", d, t, " windows"));
  console.log(
    `KL divergence: mean ${r.mean.toExponential(4)} ± ${r.meanError.toExponential(2)}, p99 ${
      r.p99.toExponential(4)
    }, max ${r.max.toExponential(4)}; same top-1: ${(r.top1 * 100).toFixed(2)}%; perplexity ${
      r.perplexity.toFixed(4)
    } (base ${r.basePerplexity.toFixed(4)}); ${r.positions} positions`,
  );
  return 0;
}
