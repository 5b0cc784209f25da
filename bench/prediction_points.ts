/**
 * Recall of the look-ahead guess issued at different points of a token's
 * forward pass (bench/prediction.md, "When to guess"): layer t's router applied
 * to the residual stream as it is
 *
 *   A  after layer t−1's attention (what the engine uses: layer t−1's expert input),
 *   B  the same, normalised with layer t's own FFN norm weights,
 *   C  before layer t−1's attention,
 *   D  after layer t−2's attention (two layers ahead),
 *   E  before layer t's own attention (one attention before its router),
 *
 * each at depths k, k+1, k+2 (k = experts per token), then the combined
 * predictor (look-ahead blended with the transition table learned while
 * decoding) fed with A's and E's logits. Decodes TEXT token by token (windows
 * of 512) with the model in RAM; the residual stream is captured from the
 * model's RMS-norm calls, so the engine is not changed for it.
 *
 *     deno run -A bench/prediction_points.ts MODEL.gguf TEXT [TOKENS]
 *
 * @module
 */
import { NativeLibrary } from "../mod.ts";
import { GgufFile } from "../src/gguf/mod.ts";
import { ggufWeights } from "../src/models/gguf_weights.ts";
import { MoeModel } from "../src/models/model.ts";
import { dequantizeRow, matmul } from "../src/models/ops.ts";
import { topK } from "../src/router/router.ts";
import { combinedPredictor } from "../src/predictor/predictor.ts";
import { tokenizerFromGgufFile } from "../src/tokenizer/mod.ts";

const [modelPath, textPath, tokensArg] = Deno.args;
if (!textPath) {
  console.error("usage: deno run -A bench/prediction_points.ts MODEL.gguf TEXT [TOKENS]");
  Deno.exit(2);
}
const maxTokens = Number(tokensArg ?? 4000);
using lib = NativeLibrary.open();
using file = GgufFile.open(modelPath);
const weights = ggufWeights(file);
const tokenizer = tokenizerFromGgufFile(file);
const a = weights.arch;
const nL = weights.number(`${a}.block_count`)!, d = weights.number(`${a}.embedding_length`)!;
const E = weights.number(`${a}.expert_count`)!, K = weights.number(`${a}.expert_used_count`)!;
const vec = (name: string) => {
  const out = new Float32Array(d);
  dequantizeRow(lib, weights.tensor(name)!, 0, out);
  return out;
};
const ffnNorm = Array.from({ length: nL }, (_, l) => vec(`blk.${l}.ffn_norm.weight`));
const router = Array.from({ length: nL }, (_, l) => weights.tensor(`blk.${l}.ffn_gate_inp.weight`)!);
const eps = weights.number(`${a}.attention.layer_norm_rms_epsilon`) ?? 1e-6;

interface Step {
  pre: Float32Array[];
  mid: Float32Array[];
  routed: Uint32Array[];
}
const steps: Step[] = [];
let step: Step = { pre: [], mid: [], routed: [] };
// Per token, the model's RMS norms of an nEmbd vector come in the order attn_norm 0, ffn_norm 0, …,
// ffn_norm L−1, output_norm: their inputs are the residual stream before and after each attention.
let call = 0;
const proxy = new Proxy(lib, {
  get(t, p) {
    if (p === "rmsNorm") {
      return (x: Float32Array, w: Float32Array | undefined, e: number, out: Float32Array, n?: number) => {
        if (x.length === d && w && w.length === d && (n === undefined || n === d)) {
          const k = call++ % (2 * nL + 1);
          if (k === 0) steps.push(step = { pre: [], mid: [], routed: [] });
          if (k < 2 * nL) (k % 2 === 0 ? step.pre : step.mid)[k >> 1] = x.slice();
        }
        return t.rmsNorm(x, w, e, out, n);
      };
    }
    const v = Reflect.get(t, p, t);
    return typeof v === "function" ? v.bind(t) : v;
  },
});
const model = new MoeModel(weights, proxy as NativeLibrary, {
  nCtx: 512,
  onRoute(l, ids) {
    step.routed[l] = ids;
  },
});
const ids = tokenizer.encode(Deno.readTextFileSync(textPath), { addSpecial: false }).slice(0, maxTokens);
ids.forEach((id, i) => model.forward(id, i % 512));

function logits(x: Float32Array, w: Float32Array, target: number): Float32Array {
  const n = new Float32Array(d);
  lib.rmsNorm(x, w, eps, n);
  const y = new Float32Array(E);
  matmul(lib, router[target], n, y, 1);
  return y;
}
type Variant = (s: Step, t: number) => Float32Array | undefined;
const variants: Record<string, Variant> = {
  "A after attention t-1": (s, t) => t > 0 ? logits(s.mid[t - 1], ffnNorm[t - 1], t) : undefined,
  "B after attention t-1, norm t": (s, t) => t > 0 ? logits(s.mid[t - 1], ffnNorm[t], t) : undefined,
  "C before attention t-1": (s, t) => t > 0 ? logits(s.pre[t - 1], ffnNorm[t], t) : undefined,
  "D after attention t-2": (s, t) => t > 1 ? logits(s.mid[t - 2], ffnNorm[t], t) : undefined,
  "E before attention t": (s, t) => logits(s.pre[t], ffnNorm[t], t),
};
console.log(`${steps.length} tokens, ${nL} layers, ${E} experts, top-${K}`);
for (const [name, f] of Object.entries(variants)) {
  for (const depth of [K, K + 1, K + 2]) {
    const per = Array.from({ length: nL }, () => [0, 0]);
    for (const s of steps) {
      for (let t = 0; t < nL; t++) {
        const lg = f(s, t);
        if (!lg) continue;
        const g = topK(lg, depth);
        for (const id of s.routed[t]) if (g.includes(id)) per[t][0]++;
        per[t][1] += K;
      }
    }
    const c = per.reduce((x, p) => x + p[0], 0), n = per.reduce((x, p) => x + p[1], 0);
    const l13 = per.slice(1).reduce((x, p) => x + p[0], 0) / per.slice(1).reduce((x, p) => x + p[1], 0);
    console.log(
      `${name.padEnd(30)} depth ${depth}: recall ${(c / n).toFixed(3)} (layers 1..: ${l13.toFixed(3)}) by layer ${
        per.map((p) => p[1] ? (p[0] / p[1]).toFixed(2) : "-").join(" / ")
      }`,
    );
  }
}
for (const [name, f] of [["A", variants["A after attention t-1"]], ["E", variants["E before attention t"]]] as const) {
  for (const depth of [K, K + 1, K + 2]) {
    const p = combinedPredictor(depth, nL, E);
    for (const s of steps) {
      for (let t = 0; t < nL; t++) {
        const lg = f(s, t);
        if (lg) p.predict(t, { hidden: new Float32Array(0), routed: s.routed, routerLogits: () => lg });
        p.observe(t, s.routed[t]);
      }
    }
    const st = p.stats();
    console.log(
      `combined ${name} depth ${depth}: precision ${(st.correct / st.predicted).toFixed(3)} recall ${
        (st.correct / st.actual).toFixed(3)
      } by layer ${st.perLayer.map((x) => (x.correct / x.actual).toFixed(2)).join(" / ")}`,
    );
  }
}
