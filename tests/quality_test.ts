/**
 * Perplexity and KL divergence against llama.cpp: the same windows evaluated
 * by libllama (the oracle), its perplexity computed from its logits exactly as
 * llama-perplexity scores them (second half of each window, log-softmax in
 * f64), compared with ours on the F32 fixtures.
 */
import { NativeLibrary } from "../mod.ts";
import { GgufFile } from "../src/gguf/mod.ts";
import { ggufWeights } from "../src/models/gguf_weights.ts";
import { MoeModel } from "../src/models/model.ts";
import { modelLogits } from "../src/plan/measure.ts";
import { baseLogProbs, kld, type LogitsSource, makeWindows, perplexity } from "../src/quality/quality.ts";
import { tokenizerFromGguf } from "../src/tokenizer/mod.ts";
import { assert, assertEquals } from "../src/std/assert.ts";
import { LlamaModel } from "./oracle/llama.ts";
import { FIXTURE_DIR } from "./oracle/reference.ts";

const TEXT = new URL("fixtures/text/moby_dick_ch3.txt", import.meta.url);

/** llama-perplexity's score of windows whose logits came from llama.cpp. */
function llamaPerplexity(llama: LlamaModel, windows: Uint32Array[], first: number): number {
  let nll = 0, count = 0;
  for (const w of windows) {
    const logits = llama.evaluate(w);
    for (let j = first; j < w.length - 1; j++) {
      const row = logits[j];
      let max = -Infinity;
      for (const v of row) max = Math.max(max, v);
      let sum = 0;
      for (const v of row) sum += Math.exp(v - max);
      nll -= row[w[j + 1]] - max - Math.log(sum);
      count++;
    }
  }
  return Math.exp(nll / count);
}

for (const name of ["qwen3moe", "olmoe", "mixtral"]) {
  Deno.test(`${name}: perplexity equals llama.cpp's on the same windows`, () => {
    using lib = NativeLibrary.open();
    const path = `${FIXTURE_DIR}${name}.gguf`;
    using file = GgufFile.open(path);
    const tok = tokenizerFromGguf(new Map([...file.metadata].map(([k, v]) => [k, v.value])));
    const ids = tok.encode(Deno.readTextFileSync(TEXT), { addSpecial: false });
    const addsBos = tok.bosId !== undefined && tok.encode("", { addSpecial: true })[0] === tok.bosId;
    const w = makeWindows(ids, 64, addsBos ? tok.bosId : undefined, 3);
    const ours = perplexity(
      modelLogits(new MoeModel(ggufWeights(file), lib, { nCtx: 64 })),
      w,
      (t) => new TextEncoder().encode(tok.decode(t)).length,
    );
    using llama = LlamaModel.load(path, { nCtx: 64, threads: 1 });
    const theirs = llamaPerplexity(llama, w.tokens, w.first);
    const rel = Math.abs(ours.perplexity - theirs) / theirs;
    console.log(
      `  ${name}: ours ${ours.perplexity.toFixed(6)}, llama.cpp ${theirs.toFixed(6)}, rel ${rel.toExponential(2)}`,
    );
    assertEquals(ours.tokens, 3 * 31);
    assert(rel < 1e-5, `relative difference ${rel}`);
    assert(ours.bitsPerByte > 0 && Number.isFinite(ours.bitsPerByte));
  });
}

Deno.test("kld: zero against itself with full top-1 agreement; positive against F16, matching llama.cpp's F16 logits", () => {
  using lib = NativeLibrary.open();
  using f32 = GgufFile.open(`${FIXTURE_DIR}qwen3moe.gguf`);
  using f16 = GgufFile.open(`${FIXTURE_DIR}qwen3moe-f16.gguf`);
  const tok = tokenizerFromGguf(new Map([...f32.metadata].map(([k, v]) => [k, v.value])));
  const w = makeWindows(tok.encode(Deno.readTextFileSync(TEXT)), 32, undefined, 2);
  const src = (f: GgufFile): LogitsSource => modelLogits(new MoeModel(ggufWeights(f), lib, { nCtx: 32 }));
  const base = baseLogProbs(src(f32), w);
  const self = kld(src(f32), base);
  assertEquals(self.mean, 0);
  assertEquals(self.top1, 1);
  const half = kld(src(f16), base);
  assert(half.mean > 0 && half.p99 >= half.mean && half.max >= half.p99, JSON.stringify(half));
  // The same comparison with llama.cpp's own F32 and F16 logits.
  using l32 = LlamaModel.load(`${FIXTURE_DIR}qwen3moe.gguf`, { nCtx: 32, threads: 1 });
  using l16 = LlamaModel.load(`${FIXTURE_DIR}qwen3moe-f16.gguf`, { nCtx: 32, threads: 1 });
  const rows = (l: LlamaModel): LogitsSource => {
    let k = -1, j = 0, cur: Float32Array[] = [];
    return {
      nVocab: l.nVocab,
      reset() {
        cur = l.evaluate(w.tokens[++k], { oneByOne: true });
        j = 0;
      },
      next: () => cur[j++],
    };
  };
  const theirs = kld(rows(l16), baseLogProbs(rows(l32), w));
  console.log(`  KL F16 vs F32: ours ${half.mean.toExponential(3)}, llama.cpp ${theirs.mean.toExponential(3)}`);
  assert(Math.abs(half.mean - theirs.mean) <= 0.2 * theirs.mean, `${half.mean} vs ${theirs.mean}`);
  assertEquals(half.positions, theirs.positions);
});
