/**
 * The engine's logits against llama.cpp's on the same GGUF files
 * (tests/fixtures/models, references computed by tools/fixtures/make_reference_logits.ts).
 */
import { NativeLibrary } from "../mod.ts";
import { GgufFile } from "../src/gguf/mod.ts";
import { ggufWeights } from "../src/models/gguf_weights.ts";
import { MoeModel } from "../src/models/model.ts";
import { EdgeMoeError } from "../src/errors.ts";
import { LlamaModel } from "./oracle/llama.ts";
import { assert, assertEquals, assertThrows } from "../src/std/assert.ts";
import { compareLogits, FIXTURE_DIR, type FixtureName, maxAbsDiff, readReference } from "./oracle/reference.ts";

/** Per fixture: the largest |ours − llama.cpp| allowed on any logit. */
const TOLERANCE: Partial<Record<FixtureName, number>> = {
  "qwen3moe": 1e-4,
  "qwen2moe": 1e-4,
  "olmoe": 1e-4,
  "mixtral": 1e-4,
  // F16 weights: we round activations to F16 as GGML's vec_dot_type does, but llama.cpp's batched
  // paths do not round in every matmul, so F16-level noise (up to 2e-3 here) remains.
  "qwen3moe-f16": 4e-3,
};

function run(model: MoeModel, tokens: readonly number[]): Float32Array[] {
  return tokens.map((t, pos) => model.forward(t, pos));
}

for (const [name, tol] of Object.entries(TOLERANCE) as [FixtureName, number][]) {
  Deno.test(`${name}: logits match llama.cpp within ${tol}, greedy tokens identical`, () => {
    using lib = NativeLibrary.open();
    using file = GgufFile.open(`${FIXTURE_DIR}${name}.gguf`);
    const ref = readReference(name);
    ref.prompts.forEach((p, i) => {
      const model = new MoeModel(ggufWeights(file), lib, { nCtx: 512 });
      const d = maxAbsDiff(run(model, p.tokens), ref.logits(i));
      const verdict = d.max <= tol ? "OK" : "NOT OK";
      console.log(
        `  ${name} ${p.name}: max |Δ| = ${d.max.toExponential(2)} at position ${d.row}, token ${d.col} ${verdict}`,
      );
      assert(d.max <= tol, `${name} prompt ${p.name}: max |Δ| ${d.max} > ${tol}`);
    });
    // Greedy continuation, argmax with the lowest id on ties, as the reference did.
    const model = new MoeModel(ggufWeights(file), lib, { nCtx: 512 });
    const seq = [...ref.greedy.prompt];
    let logits = run(model, seq).at(-1)!;
    const out: number[] = [];
    for (let i = 0; i < ref.greedy.tokens.length; i++) {
      let best = 0;
      for (let j = 1; j < logits.length; j++) if (logits[j] > logits[best]) best = j;
      out.push(best);
      logits = model.forward(best, seq.length + i);
    }
    assertEquals(out, ref.greedy.tokens);
  });
}

Deno.test("forward refuses token ids and positions out of range", () => {
  using lib = NativeLibrary.open();
  using file = GgufFile.open(`${FIXTURE_DIR}qwen3moe.gguf`);
  const model = new MoeModel(ggufWeights(file), lib, { nCtx: 8 });
  assertThrows(
    () => model.forward(model.hp.nVocab, 0),
    EdgeMoeError,
    `outside the vocabulary 0..${model.hp.nVocab - 1}`,
  );
  assertThrows(() => model.forward(1, 8), EdgeMoeError, "outside the context 0..7");
});

for (const name of ["qwen3moe-q8_0", "qwen3moe-q4_k_m"] as const) {
  Deno.test(`${name}: top-1 agreement ≥ 99% and mean KL ≤ 1e-3 against llama.cpp on the same file`, () => {
    using lib = NativeLibrary.open();
    using file = GgufFile.open(`${FIXTURE_DIR}${name}.gguf`);
    const ref = readReference(name);
    const ours: Float32Array[] = [], theirs: Float32Array[] = [];
    ref.prompts.forEach((p, i) => {
      const model = new MoeModel(ggufWeights(file), lib, { nCtx: 512 });
      ours.push(...run(model, p.tokens));
      theirs.push(...ref.logits(i));
    });
    const c = compareLogits(ours, theirs);
    console.log(
      `  ${name}: ${ours.length} positions, top-1 ${c.top1Agreement.toFixed(4)}, mean KL ${
        c.meanKl.toExponential(2)
      }, max |Δ| ${c.maxAbsDiff.toExponential(2)}`,
    );
    assert(ours.length >= 64);
    assert(c.top1Agreement >= 0.99 && c.meanKl <= 1e-3, JSON.stringify(c));
  });
}

Deno.test("forwardBatch (prefill) gives bit-identical logits to forward token by token, every architecture", () => {
  using lib = NativeLibrary.open();
  for (const name of ["qwen3moe", "qwen2moe", "olmoe", "mixtral", "qwen3moe-q8_0"] as const) {
    using file = GgufFile.open(`${FIXTURE_DIR}${name}.gguf`);
    const tokens = readReference(name).prompts[1].tokens.slice(0, 40);
    const one = new MoeModel(ggufWeights(file), lib, { nCtx: 128 });
    const batched = new MoeModel(ggufWeights(file), lib, { nCtx: 128 });
    let last!: Float32Array;
    tokens.forEach((t, pos) => (last = one.forward(t, pos)));
    const a = batched.forwardBatch(tokens.slice(0, 25), 0);
    const b = batched.forwardBatch(tokens.slice(25), 25);
    assertEquals(new Uint32Array(b.buffer), new Uint32Array(last.buffer), name);
    assertEquals(a.length, last.length);
    // And decoding continues identically after a batched prefill.
    assertEquals(new Uint32Array(batched.forward(7, 40).buffer), new Uint32Array(one.forward(7, 40).buffer), name);
  }
});

Deno.test("F16 KV cache: logits match llama.cpp's with type_k = type_v = F16, batched prefill bit-identical to forward", () => {
  using lib = NativeLibrary.open();
  for (const name of ["qwen3moe", "qwen2moe"] as const) {
    using file = GgufFile.open(`${FIXTURE_DIR}${name}.gguf`);
    const tokens = readReference(name).prompts[1].tokens.slice(0, 48);
    const llama = LlamaModel.load(`${FIXTURE_DIR}${name}.gguf`, { nCtx: 256, kvType: 1 });
    let theirs: Float32Array[];
    try {
      theirs = llama.evaluate(tokens, { oneByOne: true });
    } finally {
      llama.close();
    }
    const model = new MoeModel(ggufWeights(file), lib, { nCtx: 128, kvType: "f16" });
    const ours = run(model, tokens);
    const f16 = maxAbsDiff(ours, theirs);
    const f32 = run(new MoeModel(ggufWeights(file), lib, { nCtx: 128 }), tokens);
    const rms = (a: Float32Array[]) =>
      Math.sqrt(
        a.flatMap((r, i) => [...r].map((v, j) => (v - theirs[i][j]) ** 2))
          .reduce((x, y) => x + y) / (a.length * a[0].length),
      );
    console.log(
      `  ${name}: F16 cache max |Δ| = ${f16.max.toExponential(2)}, rms ${
        rms(ours).toExponential(2)
      }; our F32 cache: max |Δ| ${maxAbsDiff(f32, theirs).max.toExponential(2)}, rms ${rms(f32).toExponential(2)}`,
    );
    // Like F16 weights: an f32 value 1 ulp away from llama.cpp's can round to a different f16, so F16-level
    // noise remains; an F32 cache, by contrast, is off by the whole F16 rounding.
    assert(f16.max <= 4e-3 && rms(ours) * 4 <= rms(f32), `${name}: max |Δ| ${f16.max}`);
    const batched = new MoeModel(ggufWeights(file), lib, { nCtx: 128, kvType: "f16" });
    const last = batched.forwardBatch(tokens, 0);
    assertEquals(new Uint32Array(last.buffer), new Uint32Array(ours.at(-1)!.buffer), name);
  }
  assertThrows(
    () => new MoeModel(ggufWeights(GgufFile.open(`${FIXTURE_DIR}qwen3moe.gguf`)), lib, { kvType: "q8" as "f16" }),
    EdgeMoeError,
    'kvType must be "f32" or "f16"',
  );
});
