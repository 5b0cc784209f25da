/**
 * Expert-prediction quality: precision and recall of every predictor at
 * several prefetch depths, on text the profile never saw.
 *
 *     deno run -A bench/prediction.ts MODEL.gguf PROFILE_TEXT HELDOUT_TEXT [TOKENS] [DEPTHS]
 *
 * Decodes PROFILE_TEXT and HELDOUT_TEXT token by token (in windows of 512,
 * as `edgemoe run` decodes) once each, recording for every token and layer
 * the routed experts and the next layer's router logits on this layer's
 * expert input (what the look-ahead sees). The table predictor's profile is
 * built from PROFILE_TEXT's routing (as `edgemoe profile` builds it); every
 * predictor then replays HELDOUT_TEXT's trace, which gives exactly the
 * guesses it makes while decoding, since predictions never change the
 * routing. DEPTHS defaults to 2,3,4,5,6. Prints a Markdown table.
 *
 * @module
 */
import { NativeLibrary } from "../mod.ts";
import { GgufFile } from "../src/gguf/mod.ts";
import { ggufWeights } from "../src/models/gguf_weights.ts";
import { MoeModel } from "../src/models/model.ts";
import {
  combinedPredictor,
  lookaheadPredictor,
  type Predictor,
  ProfileBuilder,
  tablePredictor,
} from "../src/predictor/predictor.ts";
import { tokenizerFromGgufFile } from "../src/tokenizer/mod.ts";

const [modelPath, profilePath, heldPath, tokensArg, depthsArg] = Deno.args;
if (!heldPath) {
  console.error("usage: deno run -A bench/prediction.ts MODEL.gguf PROFILE_TEXT HELDOUT_TEXT [TOKENS] [DEPTHS]");
  Deno.exit(2);
}
const maxTokens = Number(tokensArg ?? 4000);
const depths = (depthsArg ?? "2,3,4,5,6").split(",").map(Number);
const WINDOW = 512;

/** Per token: routed ids and the look-ahead logits, by layer. */
interface Step {
  routed: Uint32Array[];
  logits: Float32Array[];
}

using lib = NativeLibrary.open();
using file = GgufFile.open(modelPath);
const weights = ggufWeights(file);
const tokenizer = tokenizerFromGgufFile(file);

function trace(textPath: string): Step[] {
  const steps: Step[] = [];
  let step: Step = { routed: [], logits: [] };
  const recorder: Predictor = {
    name: "recorder",
    predict(layer, ctx) {
      step.logits[layer] = ctx.routerLogits().slice();
      return new Uint32Array(0);
    },
    observe() {},
    stats: () => ({ predicted: 0, correct: 0, actual: 0, perLayer: [] }),
  };
  const model = new MoeModel(weights, lib, {
    nCtx: WINDOW,
    predictor: recorder,
    onRoute(layer, ids) {
      if (layer === 0) steps.push(step = { routed: [], logits: [] });
      step.routed[layer] = ids;
    },
  });
  const ids = tokenizer.encode(Deno.readTextFileSync(textPath), { addSpecial: false }).slice(0, maxTokens);
  ids.forEach((id, i) => model.forward(id, i % WINDOW));
  return steps;
}

const profileTrace = trace(profilePath), held = trace(heldPath);
const nLayer = held[0].routed.length, nExpert = held[0].logits[1].length;
const builder = new ProfileBuilder(nLayer, nExpert);
for (const s of profileTrace) s.routed.forEach((ids, l) => builder.record(l, ids));
const profile = builder.profile();

function replay(p: Predictor): string {
  for (const s of held) {
    for (let l = 0; l < nLayer; l++) {
      if (l > 0) p.predict(l, { hidden: new Float32Array(0), routed: s.routed, routerLogits: () => s.logits[l] });
      p.observe(l, s.routed[l]);
    }
  }
  const st = p.stats();
  const perLayer = st.perLayer.slice(1).map((x) => (x.correct / x.actual).toFixed(2)).join(" / ");
  return `${(st.correct / st.predicted).toFixed(3)} | ${(st.correct / st.actual).toFixed(3)} | ${perLayer}`;
}

console.log(
  `${held.length} held-out tokens (${heldPath}); profile from ${profileTrace.length} tokens (${profilePath})\n`,
);
console.log("| predictor | depth | precision | recall | recall by layer (1..) |");
console.log("| --------- | ----- | --------- | ------ | --------------------- |");
for (const d of depths) {
  const rows: [string, Predictor][] = [
    ["lookahead", lookaheadPredictor(d)],
    ["table (profile)", tablePredictor(profile, d)],
    ["combined (no profile)", combinedPredictor(d, nLayer, nExpert)],
    ["combined (profile)", combinedPredictor(d, nLayer, nExpert, profile)],
  ];
  for (const [name, p] of rows) console.log(`| ${name} | ${d} | ${replay(p)} |`);
}
