/**
 * Uniform quantization vs planned per-expert types, at equal bits.
 *
 *     deno run -A bench/bitwidth.ts SOURCE_F32.gguf CALIB.txt HELDOUT.txt [CTX] [CALIB_TOKENS] [HELDOUT_WINDOWS]
 *
 * Measures every expert's sensitivity on CALIB (as `edgemoe plan`), then on
 * HELDOUT (never seen by the planner) evaluates, against the unquantized
 * source: every uniform candidate type, and both planners' plans at each
 * uniform type's bits and between them. Each configuration's experts are the
 * source experts requantized natively (the bytes `edgemoe convert --plan`
 * writes). Prints a Markdown table.
 *
 * @module
 */
import { NativeLibrary } from "../mod.ts";
import { GgufFile } from "../src/gguf/mod.ts";
import { ggufWeights } from "../src/models/gguf_weights.ts";
import { MoeModel } from "../src/models/model.ts";
import { type ExpertSource, type ExpertWeights, residentExperts } from "../src/models/weights.ts";
import { measureSensitivity, modelLogits, requantize, type Sensitivity } from "../src/plan/measure.ts";
import type { PlanSummary } from "../src/plan/plan_file.ts";
import { budgetOf, costsOf, summarize } from "../src/plan/solve.ts";
import { edgemoePlan, knapsackPlan, type PlanChoice } from "../src/plan/planner.ts";
import { baseLogProbs, kld, makeWindows, type Windows } from "../src/quality/quality.ts";
import { tokenizerFromGguf } from "../src/tokenizer/mod.ts";

const [source, calibPath, heldPath, ctxArg, calibArg] = Deno.args;
const ctx = Number(ctxArg ?? 128), calibTokens = Number(calibArg ?? 512);
using lib = NativeLibrary.open();
using file = GgufFile.open(source);
const weights = ggufWeights(file);
const tok = tokenizerFromGguf(new Map([...file.metadata].map(([k, v]) => [k, v.value])));
const windowsOf = (path: string, max: number, first?: number): Windows =>
  makeWindows(tok.encode(Deno.readTextFileSync(path), { addSpecial: false }), ctx, undefined, max, first);
const calib = windowsOf(calibPath, Math.floor(calibTokens / ctx), 0);
const held = windowsOf(heldPath, Number(Deno.args[5] ?? 8));

let t0 = performance.now();
const sens: Sensitivity = measureSensitivity(lib, weights, calib);
const measureSecs = (performance.now() - t0) / 1000;
const original = residentExperts(weights);

function modelFor(types: string[][]): MoeModel {
  const experts = new Map<string, ExpertWeights>();
  const source: ExpertSource = {
    acquire(layer, ids) {
      const list = [...ids].map((id) => {
        const key = `${layer}.${id}`;
        if (!experts.has(key)) {
          const e = original.acquire(layer, Uint32Array.of(id)).experts[0];
          const t = types[layer][id];
          experts.set(key, {
            gate: requantize(lib, e.gate, t),
            up: requantize(lib, e.up, t),
            down: requantize(lib, e.down, t),
          });
        }
        return experts.get(key)!;
      });
      return { experts: list, [Symbol.dispose]() {} };
    },
    prefetch() {},
  };
  return new MoeModel(weights, lib, { nCtx: ctx, experts: source });
}

const base = baseLogProbs(modelLogits(new MoeModel(weights, lib, { nCtx: ctx })), held);
const rows: string[] = [];
function row(name: string, s: PlanSummary): void {
  const r = kld(modelLogits(modelFor(s.types)), base);
  rows.push(
    `| ${name} | ${s.bits.toFixed(3)} | ${Math.round(s.bytesPerToken)} | ${r.mean.toExponential(3)} | ${
      r.p99.toExponential(3)
    } | ${(r.top1 * 100).toFixed(2)}% | ${r.perplexity.toFixed(3)} | ${s.loss.toExponential(3)} |`,
  );
}
t0 = performance.now();
const uniform = (t: number): PlanChoice => {
  const choice = costsOf(sens).map(() => t);
  const c = costsOf(sens);
  return { choice, loss: c.reduce((a, e) => a + e.loss[t], 0), bytes: c.reduce((a, e) => a + e.bytes[t], 0) };
};
const bitsList: number[] = [];
sens.candidates.forEach((name, t) => {
  const s = summarize(sens, uniform(t));
  bitsList.push(s.bits);
  row(`uniform ${name}`, s);
});
const targets = [...bitsList.slice(0, -1), ...bitsList.slice(0, -1).map((b, i) => (b + bitsList[i + 1]) / 2)].sort((
  a,
  b,
) => a - b);
for (const bits of targets) {
  const budget = budgetOf(sens, { targetBits: bits });
  row(`edgemoe @ ${bits.toFixed(3)}`, summarize(sens, edgemoePlan(costsOf(sens), budget)));
  row(`knapsack @ ${bits.toFixed(3)}`, summarize(sens, knapsackPlan(costsOf(sens), budget)));
}
console.log(
  `source ${
    source.slice(source.lastIndexOf("/") + 1)
  }: ${sens.nLayers} layers × ${sens.nExperts} experts; calibration ${sens.tokens} scored tokens (${calib.tokens.length} windows of ${ctx}), measured in ${
    measureSecs.toFixed(1)
  } s; held-out ${base.perWindow.length} windows of ${ctx} (${
    base.perWindow.length * (ctx - 1 - held.first)
  } scored tokens), evaluated in ${((performance.now() - t0) / 1000).toFixed(1)} s; base perplexity ${
    kld(modelLogits(new MoeModel(weights, lib, { nCtx: ctx })), base).basePerplexity.toFixed(3)
  }\n`,
);
console.log(
  "| experts | bits/weight | expert bytes read/token | KL mean | KL p99 | same top-1 | perplexity | planned KL (calib) |",
);
console.log("| --- | --- | --- | --- | --- | --- | --- | --- |");
for (const r of rows) console.log(r);
