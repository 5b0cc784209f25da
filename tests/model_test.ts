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
import { convertHfToGguf } from "../src/hf/convert.ts";
import { computeReference } from "../tools/fixtures/make_reference_logits.ts";
import { assert, assertEquals, assertThrows } from "../src/std/assert.ts";
import {
  argmaxOf,
  compareLogits,
  FIXTURE_DIR,
  type FixtureName,
  type LoadedReference,
  maxAbsDiff,
  readReference,
} from "./oracle/reference.ts";

/**
 * Issue #5's pass criteria, per architecture, against llama.cpp on the same file: F32 weights within
 * `F32_MAX_ABS_DIFF` of every logit over at least `MIN_POSITIONS` positions of one sequence and the same
 * `MIN_GREEDY` or more greedy tokens; Q8_0 and Q4_K_M files (quantized by llama.cpp; the Q4_K_M ones with
 * every row a multiple of 256 so K-quants apply) with top-1 agreement ≥ `MIN_TOP1` and mean KL ≤ `MAX_MEAN_KL`.
 */
const ARCHITECTURES: readonly { arch: string; f32: FixtureName; quantized: readonly FixtureName[] }[] = [
  { arch: "Qwen3-MoE", f32: "qwen3moe", quantized: ["qwen3moe-q8_0", "qwen3moe-q4_k_m"] },
  { arch: "Qwen2-MoE", f32: "qwen2moe", quantized: ["qwen2moe-q8_0", "qwen2moe-q4_k_m"] },
  { arch: "OLMoE", f32: "olmoe", quantized: ["olmoe-q8_0", "olmoe-q4_k_m"] },
  { arch: "Mixtral", f32: "mixtral", quantized: ["mixtral-q8_0", "mixtral-q4_k_m"] },
];
const F32_MAX_ABS_DIFF = 1e-3;
const MIN_POSITIONS = 64;
const MIN_GREEDY = 32;
const MIN_TOP1 = 0.99;
const MAX_MEAN_KL = 1e-3;
/**
 * F16 weights: we round activations to F16 as GGML's vec_dot_type does, but llama.cpp's batched paths do
 * not round in every matmul, so F16-level noise (up to 2e-3 here) remains.
 */
const F16_MAX_ABS_DIFF = 4e-3;
/**
 * BF16 weights (the HF Mixtral and OLMoE fixtures): activations rounded to BF16 as GGML's vec_dot_type, so the
 * short, random-id and one-by-one prompts agree to ~2e-6 (5e-2 to 7e-2 when edgemoe kept f32 activations).
 * On the 188-token prompt llama.cpp's batched path differs at 3 positions (up to 2.2e-2; 1.1e-1 before).
 */
const BF16_MAX_ABS_DIFF = 1e-5;
const BF16_LONG_MAX_ABS_DIFF = 3e-2;

function run(model: MoeModel, tokens: readonly number[]): Float32Array[] {
  return tokens.map((t, pos) => model.forward(t, pos));
}

/**
 * Every prompt of llama.cpp's reference `ref` on the GGUF file `path` (default: the committed fixture) within
 * `tol` of our logits, and our greedy tokens identical.
 */
function assertMatchesLlama(
  name: string,
  tol: number,
  ref: LoadedReference = readReference(name as FixtureName),
  path = `${FIXTURE_DIR}${name}.gguf`,
): void {
  using lib = NativeLibrary.open();
  using file = GgufFile.open(path);
  assert(Math.max(...ref.prompts.map((p) => p.tokens.length)) >= MIN_POSITIONS, `${name}: no prompt of 64 tokens`);
  assert(ref.greedy.tokens.length >= MIN_GREEDY, `${name}: ${ref.greedy.tokens.length} greedy tokens`);
  ref.prompts.forEach((p, i) => {
    const model = new MoeModel(ggufWeights(file), lib, { nCtx: 512 });
    const d = maxAbsDiff(run(model, p.tokens), ref.logits(i));
    const verdict = d.max <= tol ? "OK" : "NOT OK";
    console.log(
      `  ${name} ${p.name} (${p.tokens.length} positions): max |Δ| = ${
        d.max.toExponential(2)
      } at position ${d.row}, token ${d.col} ${verdict}`,
    );
    assert(d.max <= tol, `${name} prompt ${p.name}: max |Δ| ${d.max} > ${tol} at position ${d.row}, token ${d.col}`);
  });
  // Greedy continuation, argmax with the lowest id on ties, as the reference did.
  const model = new MoeModel(ggufWeights(file), lib, { nCtx: 512 });
  const seq = [...ref.greedy.prompt];
  let logits = run(model, seq).at(-1)!;
  const out: number[] = [];
  for (let i = 0; i < ref.greedy.tokens.length; i++) {
    const best = argmaxOf(logits);
    out.push(best);
    logits = model.forward(best, seq.length + i);
  }
  assertEquals(out, ref.greedy.tokens);
}

for (const { arch, f32, quantized } of ARCHITECTURES) {
  Deno.test(
    `${arch} F32 (${f32}): logits within ${F32_MAX_ABS_DIFF} of llama.cpp over ≥ ${MIN_POSITIONS} positions, ` +
      `≥ ${MIN_GREEDY} greedy tokens identical`,
    () => assertMatchesLlama(f32, F32_MAX_ABS_DIFF),
  );
  for (const name of quantized) {
    Deno.test(
      `${arch} ${name}: top-1 agreement ≥ ${MIN_TOP1 * 100}% and mean KL ≤ ${MAX_MEAN_KL} against llama.cpp ` +
        `on the same file`,
      () => {
        using lib = NativeLibrary.open();
        using file = GgufFile.open(`${FIXTURE_DIR}${name}.gguf`);
        const ref = readReference(name);
        const ours: Float32Array[] = [], theirs: Float32Array[] = [];
        const where: string[] = [];
        ref.prompts.forEach((p, i) => {
          const model = new MoeModel(ggufWeights(file), lib, { nCtx: 512 });
          ours.push(...run(model, p.tokens));
          theirs.push(...ref.logits(i));
          where.push(...p.tokens.map((_, pos) => `${p.name} position ${pos}`));
        });
        const c = compareLogits(ours, theirs);
        // Where the top-1 differs, and llama.cpp's own margin there: on these random models a flip is usually
        // a near-tie (tests/fixtures/models/README.md measures the noise floor).
        const flips = ours.flatMap((row, r) => {
          const a = argmaxOf(row), b = argmaxOf(theirs[r]);
          return a === b
            ? []
            : [`${where[r]}: ours ${a}, llama.cpp ${b} by ${(theirs[r][b] - theirs[r][a]).toExponential(1)}`];
        });
        console.log(
          `  ${name}: ${ours.length} positions, top-1 ${c.top1Agreement.toFixed(4)}, mean KL ${
            c.meanKl.toExponential(2)
          }, max |Δ| ${c.maxAbsDiff.toExponential(2)} at ${where[c.at.row]}${
            flips.map((f) => `\n    flip at ${f}`).join("")
          }`,
        );
        assert(ours.length >= MIN_POSITIONS, `${name}: ${ours.length} positions`);
        assert(c.top1Agreement >= MIN_TOP1 && c.meanKl <= MAX_MEAN_KL, `${name}: ${JSON.stringify(c)}`);
      },
    );
  }
}

Deno.test(`qwen3moe-f16: logits within ${F16_MAX_ABS_DIFF} of llama.cpp, greedy tokens identical`, () => {
  assertMatchesLlama("qwen3moe-f16", F16_MAX_ABS_DIFF);
});

Deno.test(
  `Qwen3-MoE converted from a Hugging Face directory (safetensors, F32): logits within ${F32_MAX_ABS_DIFF} of ` +
    `llama.cpp on the converted file over ≥ ${MIN_POSITIONS} positions, ≥ ${MIN_GREEDY} greedy tokens identical`,
  async () => {
    const dir = Deno.makeTempDirSync({ prefix: "edgemoe-hf-reference-" });
    try {
      const path = `${dir}/model.gguf`;
      await convertHfToGguf(new URL("./fixtures/hf/qwen3moe", import.meta.url).pathname, path);
      const { ref, logits } = await computeReference("qwen3moe", 1, path);
      assertMatchesLlama("hf qwen3moe", F32_MAX_ABS_DIFF, { ...ref, logits: (i) => logits[i] }, path);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
);

for (const arch of ["mixtral", "olmoe"] as const) {
  Deno.test(
    `${arch} converted from a Hugging Face directory (BF16): logits within ${BF16_MAX_ABS_DIFF} of llama.cpp ` +
      `except the long prompt (${BF16_LONG_MAX_ABS_DIFF}), greedy tokens identical`,
    async () => {
      const dir = Deno.makeTempDirSync({ prefix: "edgemoe-hf-reference-" });
      try {
        const path = `${dir}/model.gguf`;
        await convertHfToGguf(new URL(`./fixtures/hf/${arch}`, import.meta.url).pathname, path);
        using file = GgufFile.open(path);
        assert(file.tensors.some((t) => t.type.name === "bf16"), `${arch}: no BF16 tensor`);
        const { ref, logits } = await computeReference(arch, 1, path);
        assertMatchesLlama(`hf ${arch}`, BF16_LONG_MAX_ABS_DIFF, { ...ref, logits: (i) => logits[i] }, path);
        using lib = NativeLibrary.open();
        ref.prompts.forEach((p, i) => {
          if (p.name === "long") return;
          const d = maxAbsDiff(run(new MoeModel(ggufWeights(file), lib, { nCtx: 512 }), p.tokens), logits[i]);
          assert(d.max <= BF16_MAX_ABS_DIFF, `${arch} ${p.name}: max |Δ| ${d.max} > ${BF16_MAX_ABS_DIFF}`);
        });
      } finally {
        Deno.removeSync(dir, { recursive: true });
      }
    },
  );
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
