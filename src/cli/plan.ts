/**
 * `edgemoe plan -m MODEL -f CALIB [--target-bits B | --max-kld K | --budget SIZE] -o plan.json`:
 * measures each expert's routing frequency and sensitivity to each candidate
 * type on calibration text, runs EdgeMoE's planner and the knapsack, and
 * writes the plan (types of `--method`, both outcomes recorded).
 *
 * @module
 */
import { nativeLibrary } from "../../ffi/native.ts";
import { EdgeMoeError } from "../errors.ts";
import { writeFileAtomic } from "../fs/atomic.ts";
import { GgufFile } from "../gguf/mod.ts";
import { ggufWeights } from "../models/gguf_weights.ts";
import { DEFAULT_CANDIDATES, measureSensitivity } from "../plan/measure.ts";
import { planToJson } from "../plan/plan_file.ts";
import { type BudgetRequest, makePlan } from "../plan/solve.ts";
import { parseSize } from "../store/budget.ts";
import { tokenizerFromGguf } from "../tokenizer/mod.ts";
import { parseArgs } from "../std/cli.ts";
import { choiceFlag, intFlag, numberFlag, stringFlag } from "./flags.ts";
import { progress, textWindows } from "./perplexity.ts";

const USAGE = `usage: edgemoe plan -m MODEL -f CALIB (--target-bits B | --max-kld K | --budget SIZE) -o PLAN.json
                    [-c CTX] [--max-tokens N] [--types q2_k,q3_k,...] [--method knapsack|edgemoe]

Measures, per expert, its routing frequency and its sensitivity: the mean KL divergence of the
model's output on CALIB when that expert alone is quantized to each candidate type (default
${DEFAULT_CANDIDATES.join(",")}; from its original weights, dequantized first if stored quantized).
Calibration is capped at N tokens (default 1024) in windows of CTX (default 128), every position
scored. Matrices whose rows do not fill a K-quant's 256-element blocks get llama.cpp's fallback
type (Q2_K/Q3_K → Q4_0, Q4_K → Q5_0, Q5_K → Q5_1, Q6_K → Q8_0). Cost: one
baseline pass, then per expert and type one pass over the windows that route to that expert
(the total is printed before measuring). Then chooses a type per expert under the budget with
EdgeMoE's planner (two bracketing types, K least sensitive experts at the lower) and a knapsack
over all types, prints both, and writes the plan with the types of --method (default knapsack).`;

/** Runs `edgemoe plan`. */
export function plan(argv: string[]): number {
  const a = parseArgs(argv, {
    string: [
      "model",
      "file",
      "output",
      "ctx-size",
      "max-tokens",
      "types",
      "target-bits",
      "max-kld",
      "budget",
      "method",
    ],
    boolean: ["help"],
    alias: { m: "model", f: "file", o: "output", c: "ctx-size", h: "help" },
  });
  if (a.help) {
    console.log(USAGE);
    return 0;
  }
  const model = stringFlag(a, "model", USAGE), file = stringFlag(a, "file", USAGE);
  const out = stringFlag(a, "output", USAGE);
  const ctx = intFlag(a, "ctx-size", 128, 4);
  const maxTokens = intFlag(a, "max-tokens", 1024, ctx);
  const method = choiceFlag(a, "method", ["knapsack", "edgemoe"] as const) ?? "knapsack";
  const bits = numberFlag(a, "target-bits"), kl = numberFlag(a, "max-kld");
  const given = [bits, kl, a.budget].filter((v) => v !== undefined).length;
  if (given !== 1) {
    throw new EdgeMoeError(
      "invalid_argument",
      "parse arguments",
      `give exactly one of --target-bits, --max-kld, --budget (got ${given})\n\n${USAGE}`,
    );
  }
  const request: BudgetRequest = bits !== undefined
    ? { targetBits: bits }
    : kl !== undefined
    ? { maxKld: kl }
    : { maxBytes: parseSize(a.budget as string) };
  const types = typeof a.types === "string" ? a.types.split(",").map((t) => t.trim().toLowerCase()) : undefined;
  const lib = nativeLibrary();
  using gguf = GgufFile.open(model);
  const tokenizer = tokenizerFromGguf(new Map([...gguf.metadata].map(([k, v]) => [k, v.value])));
  // Every position of a calibration window is scored: twice the signal per evaluation.
  const windows = textWindows(tokenizer, file, ctx, Math.floor(maxTokens / ctx), 0);
  console.error(`plan: calibrating on ${windows.tokens.length} windows of ${ctx} tokens`);
  const t0 = performance.now();
  const sens = measureSensitivity(lib, ggufWeights(gguf), windows, {
    candidates: types,
    onProgress: (done, total) => {
      if (total > 0) progress("plan: measuring", done, total, " token evaluations");
    },
  });
  const p = makePlan(sens, request, model.slice(model.lastIndexOf("/") + 1), method);
  writeFileAtomic(out, planToJson(p));
  const secs = ((performance.now() - t0) / 1000).toFixed(1);
  console.log(
    `measured ${sens.nLayers} layers × ${sens.nExperts} experts × ${sens.candidates.length} types in ${secs} s`,
  );
  console.log("| planner | expected KL | expert bytes | bits/weight | bytes read/token |");
  console.log("| --- | --- | --- | --- | --- |");
  for (const [name, s] of Object.entries(p.plans)) {
    console.log(
      `| ${name} | ${s.loss.toExponential(3)} | ${s.bytes} | ${s.bits.toFixed(3)} | ${Math.round(s.bytesPerToken)} |`,
    );
  }
  console.log(`wrote ${out} (types of the ${method} plan)`);
  return 0;
}
