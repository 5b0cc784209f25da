/**
 * The sampler against llama.cpp's own samplers (libllama of the pinned
 * @node-llama-cpp/linux-x64, through tests/oracle/llama_sampler.ts): the
 * candidates kept by top-k, top-p, min-p and the penalties, and the tokens a
 * seeded chain draws, on seeded random logits.
 */
import { Sampler, type SamplerParams } from "../src/sampler/sampler.ts";
import { LlamaSamplerChain, type LlamaStep } from "./oracle/llama_sampler.ts";
import { assertEquals } from "../src/std/assert.ts";

const N_VOCAB = 3000;

/** A small deterministic generator for test data (not the sampler's). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

/** Distinct logits (a shuffled ladder), so that no sort order depends on how ties are broken. */
function randomLogits(rnd: () => number, scale: number): Float32Array {
  const perm = Array.from({ length: N_VOCAB }, (_, i) => i);
  for (let i = perm.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [perm[i], perm[j]] = [perm[j], perm[i]];
  }
  return new Float32Array(perm.map((p) => ((p - N_VOCAB / 2) * scale) / N_VOCAB));
}

/** The llama.cpp chain equivalent to our sampler's parameters (llama.cpp's default order). */
function llamaSteps(p: Required<SamplerParams>, withDraw: boolean): LlamaStep[] {
  const steps: LlamaStep[] = [
    {
      kind: "penalties",
      nVocab: N_VOCAB,
      lastN: p.repeatLastN,
      repeat: p.repeatPenalty,
      freq: p.frequencyPenalty,
      present: p.presencePenalty,
    },
    { kind: "top_k", k: p.topK },
    { kind: "top_p", p: p.topP, minKeep: p.minKeep },
    { kind: "min_p", p: p.minP, minKeep: p.minKeep },
  ];
  if (withDraw) steps.push({ kind: "temp", t: p.temp }, { kind: "dist", seed: p.seed });
  return steps;
}

const CONFIGS: SamplerParams[] = [
  { topK: 1, topP: 1, minP: 0 },
  { topK: 40, topP: 1, minP: 0 },
  { topK: 700, topP: 1, minP: 0 },
  { topK: 0, topP: 0.5, minP: 0 },
  { topK: 0, topP: 0.9, minP: 0 },
  { topK: 0, topP: 0.99, minP: 0, minKeep: 5 },
  { topK: 0, topP: 1, minP: 0.01 },
  { topK: 0, topP: 1, minP: 0.3 },
  { topK: 0, topP: 1, minP: 0.9999, minKeep: 4 },
  {},
  {
    topK: 100,
    topP: 0.8,
    minP: 0.02,
    repeatPenalty: 1.3,
    frequencyPenalty: 0.2,
    presencePenalty: 0.5,
    repeatLastN: 16,
  },
];

Deno.test("top-k, top-p, min-p and penalties keep exactly llama.cpp's candidates, in its order", () => {
  const rnd = lcg(2024);
  CONFIGS.forEach((cfg, ci) => {
    const ours = new Sampler(N_VOCAB, { ...cfg, seed: 1 });
    const theirs = new LlamaSamplerChain(llamaSteps(ours.params, false));
    try {
      for (let trial = 0; trial < 20; trial++) {
        const history = Array.from({ length: 30 }, () => Math.floor(rnd() * N_VOCAB));
        for (const t of history) {
          ours.accept(t);
          theirs.accept(t);
        }
        const logits = randomLogits(rnd, [4, 20, 60][trial % 3]);
        const want = theirs.apply(logits);
        const got = ours.candidates(logits);
        const where = `config ${ci} ${JSON.stringify(cfg)}, trial ${trial}`;
        assertEquals(got.ids.length, want.ids.length, `${where}: candidate count`);
        assertEquals([...got.ids], [...want.ids], `${where}: ids`);
        assertEquals([...got.logits], [...want.logits], `${where}: logits`);
      }
    } finally {
      theirs.close();
    }
  });
});

Deno.test("a seeded chain draws exactly the tokens llama.cpp's dist sampler draws", () => {
  const configs: SamplerParams[] = [
    { seed: 42 },
    { seed: 7, temp: 1.3, topK: 0, topP: 1, minP: 0 },
    { seed: 123456789, temp: 0.6, topK: 200, topP: 0.9, minP: 0.01, repeatPenalty: 1.1, frequencyPenalty: 0.1 },
    { seed: 0, temp: 0 },
  ];
  const rnd = lcg(99);
  for (const cfg of configs) {
    const ours = new Sampler(N_VOCAB, cfg);
    const theirs = new LlamaSamplerChain(llamaSteps(ours.params, true));
    try {
      const got: number[] = [];
      const want: number[] = [];
      for (let step = 0; step < 150; step++) {
        const logits = randomLogits(rnd, 12);
        const r = theirs.apply(logits);
        const token = r.ids[r.selected];
        theirs.accept(token);
        want.push(token);
        got.push(ours.sample(logits));
      }
      assertEquals(got, want, JSON.stringify(cfg));
    } finally {
      theirs.close();
    }
  }
});
