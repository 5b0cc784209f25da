/** The sampler: each step on hand-made logits, determinism, statistics, validation. */
import { DEFAULT_SAMPLER_PARAMS, Sampler } from "../src/sampler/sampler.ts";
import { Mt19937 } from "../src/sampler/rng.ts";
import { EdgeMoeError } from "../src/errors.ts";
import { assert, assertAlmostEquals, assertEquals, assertNotEquals, assertThrows } from "../src/std/assert.ts";

/** Only the named steps on: everything else at its "off" value. */
const OFF = { topK: 0, topP: 1, minP: 0, repeatPenalty: 1, frequencyPenalty: 0, presencePenalty: 0, temp: 1 };
const ids = (s: Sampler, logits: number[]) => [...s.candidates(new Float32Array(logits)).ids];
const logs = (s: Sampler, logits: number[]) => [...s.candidates(new Float32Array(logits)).logits];
/** Logits whose softmax is exactly proportional to `probs`. */
const fromProbs = (probs: number[]) => probs.map(Math.log);

Deno.test("defaults are llama.cpp's (common_params_sampling, llama.cpp in node-llama-cpp 3.22.1)", () => {
  assertEquals({ ...DEFAULT_SAMPLER_PARAMS }, {
    temp: 0.8,
    topK: 40,
    topP: 0.95,
    minP: 0.05,
    minKeep: 0,
    repeatLastN: 64,
    repeatPenalty: 1.0,
    frequencyPenalty: 0.0,
    presencePenalty: 0.0,
  });
  const s = new Sampler(10);
  assert(Number.isInteger(s.params.seed) && s.params.seed >= 0 && s.params.seed < 0xffffffff);
});

Deno.test("greedy: temp 0 picks the largest logit (the first of equal ones), whatever the seed", () => {
  for (const seed of [0, 1, 99]) {
    const s = new Sampler(5, { temp: 0, seed });
    assertEquals(s.sample(new Float32Array([0.1, 2.5, -1, 2.4, 0.3])), 1);
    assertEquals(new Sampler(4, { ...OFF, temp: 0, seed }).sample(new Float32Array([1, 7, 7, 3])), 1);
    assertEquals(new Sampler(3, { temp: 0, seed }).sample(new Float32Array([-Infinity, -5, -Infinity])), 1);
  }
});

Deno.test("top-k keeps the k largest logits, largest first", () => {
  assertEquals(ids(new Sampler(5, { ...OFF, topK: 2 }), [1, 5, 3, 4, 2]), [1, 3]);
  assertEquals(ids(new Sampler(5, { ...OFF, topK: 1 }), [1, 5, 3, 4, 2]), [1]);
  assertEquals(ids(new Sampler(5, { ...OFF, topK: 9 }), [1, 5, 3, 4, 2]), [1, 3, 2, 4, 0]);
  assertEquals(ids(new Sampler(5, { ...OFF, topK: 0 }), [1, 5, 3, 4, 2]), [0, 1, 2, 3, 4]);
  const big = Array.from({ length: 1000 }, (_, i) => ((i * 7919) % 1000) / 10);
  const kept = ids(new Sampler(1000, { ...OFF, topK: 5 }), big);
  assertEquals(kept.map((i) => big[i]), [99.9, 99.8, 99.7, 99.6, 99.5]);
});

Deno.test("top-k order: equal logits keep the lower token id first; -0 equals 0; -Infinity sorts last", () => {
  const logits = [1, 3, 3, -0, 0, -Infinity, 3];
  assertEquals(ids(new Sampler(7, { ...OFF, topK: 7 }), logits), [1, 2, 6, 0, 3, 4, 5]);
  assertEquals(ids(new Sampler(7, { ...OFF, topK: 5 }), logits), [1, 2, 6, 0, 3]);
  const wide = Array.from({ length: 400 }, (_, i) => (i % 3 === 0 ? 2 : i % 5));
  assertEquals(ids(new Sampler(400, { ...OFF, topK: 3 }), wide), [4, 14, 19]);
  assertEquals(ids(new Sampler(400, { ...OFF, topK: 200 }), wide).slice(0, 3), [4, 14, 19]);
});

Deno.test("top-p keeps the smallest most-likely prefix whose probability reaches p", () => {
  const logits = fromProbs([0.15, 0.5, 0.05, 0.3]);
  const run = (topP: number, minKeep = 0) => ids(new Sampler(4, { ...OFF, topP, minKeep }), logits);
  assertEquals(run(0.4), [1]);
  assertEquals(run(0.75), [1, 3]);
  assertEquals(run(0.9), [1, 3, 0]);
  assertEquals(run(0.97), [1, 3, 0, 2]);
  assertEquals(run(1), [0, 1, 2, 3]);
  assertEquals(run(0.4, 3), [1, 3, 0]);
});

Deno.test("min-p keeps tokens with probability ≥ min_p × the top one, in their original order", () => {
  const logits = fromProbs([0.15, 0.5, 0.05, 0.3]);
  const run = (minP: number) => ids(new Sampler(4, { ...OFF, minP }), logits);
  assertEquals(run(0.2), [0, 1, 3]);
  assertEquals(run(0.5), [1, 3]);
  assertEquals(run(0.9), [1]);
  assertEquals(run(0.05), [0, 1, 2, 3]);
  // After top-k the candidates are sorted, so min-p cuts the sorted list.
  assertEquals(ids(new Sampler(4, { ...OFF, topK: 3, minP: 0.2 }), logits), [1, 3, 0]);
  // min_keep makes min-p keep more than the threshold allows.
  assertEquals(ids(new Sampler(4, { ...OFF, minP: 0.9, minKeep: 3 }), logits), [1, 3, 0]);
});

Deno.test("penalties: repeat divides positive and multiplies negative logits; frequency and presence subtract", () => {
  const s = new Sampler(4, { ...OFF, repeatPenalty: 2 });
  s.accept(0);
  s.accept(1);
  assertEquals(logs(s, [2, -2, 1, 0]), [1, -4, 1, 0]);
  const f = new Sampler(4, { ...OFF, frequencyPenalty: 0.5, presencePenalty: 0.25 });
  for (const t of [0, 0, 0, 2]) f.accept(t);
  assertEquals(logs(f, [2, -2, 1, 0]), [2 - 1.5 - 0.25, -2, 1 - 0.5 - 0.25, 0]);
  const both = new Sampler(3, { ...OFF, repeatPenalty: 1.5, frequencyPenalty: 1 });
  both.accept(0);
  both.accept(0);
  assertEquals(logs(both, [3, 1, 1]), [3 / 1.5 - 2, 1, 1]);
});

Deno.test("penalties look only at the last repeat_last_n tokens; 0 turns them off; -1 is the context size", () => {
  const s = new Sampler(3, { ...OFF, repeatPenalty: 2, repeatLastN: 2 });
  for (const t of [0, 1, 2]) s.accept(t);
  assertEquals(logs(s, [4, 4, 4]), [4, 2, 2]);
  s.accept(2);
  assertEquals(logs(s, [4, 4, 4]), [4, 4, 2]);
  s.reset();
  assertEquals(logs(s, [4, 4, 4]), [4, 4, 4]);
  const off = new Sampler(3, { ...OFF, repeatPenalty: 2, repeatLastN: 0 });
  off.accept(0);
  assertEquals(logs(off, [4, 4, 4]), [4, 4, 4]);
  const ctx = new Sampler(3, { ...OFF, repeatPenalty: 2, repeatLastN: -1 }, { contextSize: 1 });
  ctx.accept(0);
  ctx.accept(1);
  assertEquals(logs(ctx, [4, 4, 4]), [4, 2, 4]);
  const all = new Sampler(3, { ...OFF, repeatPenalty: 2, repeatLastN: -1 });
  for (const t of [0, 1, 2, 2, 2]) all.accept(t);
  assertEquals(logs(all, [4, 4, 4]), [2, 2, 2]);
});

Deno.test("sample() records the token for the penalties", () => {
  const s = new Sampler(2, { ...OFF, temp: 0, repeatPenalty: 10 });
  const logits = new Float32Array([5, 1]);
  assertEquals(s.sample(logits), 0);
  assertEquals(s.sample(logits), 1); // 5 / 10 < 1
});

Deno.test("MT19937 matches C++'s std::mt19937 (the standard's check value)", () => {
  const r = new Mt19937(5489);
  assertEquals(r.nextU32(), 3499211612);
  for (let i = 2; i < 10000; i++) r.nextU32();
  assertEquals(r.nextU32(), 4123659995);
  const d = new Mt19937(7);
  for (let i = 0; i < 1000; i++) {
    const x = d.nextDouble();
    assert(x >= 0 && x < 1);
  }
});

Deno.test("a seed makes sampling deterministic; another seed differs; reset() replays", () => {
  const logits = new Float32Array(Array.from({ length: 50 }, (_, i) => Math.sin(i) * 3));
  const run = (seed: number, n = 40) => {
    const s = new Sampler(50, { seed, topK: 0, topP: 1, minP: 0, temp: 1.5 });
    return Array.from({ length: n }, () => s.sample(logits));
  };
  assertEquals(run(1234), run(1234));
  assertNotEquals(run(1234), run(4321));
  const s = new Sampler(50, { seed: 9, temp: 1.5, topK: 0, topP: 1, minP: 0 });
  const first = Array.from({ length: 20 }, () => s.sample(logits));
  s.reset();
  assertEquals(Array.from({ length: 20 }, () => s.sample(logits)), first);
  // Cross-run and cross-platform: a fixed sequence (also what llama.cpp's dist sampler picks; see sampler_llama_test.ts).
  assertEquals(run(42, 12), run(42, 12));
});

Deno.test("statistics: draws follow softmax(logits / temp)", () => {
  const probs = [0.6, 0.3, 0.1];
  const n = 20000;
  for (const temp of [1, 0.5, 2]) {
    const s = new Sampler(3, { ...OFF, temp, seed: 77 });
    const counts = [0, 0, 0];
    const logits = new Float32Array(fromProbs(probs));
    for (let i = 0; i < n; i++) counts[s.sample(logits)]++;
    const w = probs.map((p) => p ** (1 / temp));
    const z = w.reduce((a, b) => a + b);
    counts.forEach((c, i) => {
      const want = w[i] / z;
      const sd = Math.sqrt((want * (1 - want)) / n);
      assertAlmostEquals(c / n, want, 5 * sd, `temp ${temp}, token ${i}: ${c / n} vs ${want}`);
    });
  }
});

Deno.test("statistics: top-k/top-p/min-p never let a removed token through", () => {
  const logits = new Float32Array(fromProbs([0.15, 0.5, 0.05, 0.3]));
  const s = new Sampler(4, { topK: 3, topP: 0.7, minP: 0, temp: 1, seed: 3 });
  const seen = new Set<number>();
  for (let i = 0; i < 2000; i++) seen.add(s.sample(logits));
  assertEquals([...seen].sort(), [1, 3]);
});

Deno.test("invalid sampling values are EdgeMoeErrors naming the parameter and range", () => {
  const cases: [Record<string, unknown>, string][] = [
    [{ temp: -0.1 }, "temp must be ≥ 0 (0 = greedy), got -0.1"],
    [{ topP: 0 }, "topP must be in (0, 1], got 0"],
    [{ topP: 1.5 }, "topP must be in (0, 1], got 1.5"],
    [{ minP: -0.1 }, "minP must be in [0, 1], got -0.1"],
    [{ minP: 2 }, "minP must be in [0, 1], got 2"],
    [{ topK: 2.5 }, "topK must be an integer ≥ 0, got 2.5"],
    [{ topK: -1 }, "topK must be an integer ≥ 0, got -1"],
    [{ repeatLastN: -2 }, "repeatLastN must be an integer ≥ -1, got -2"],
    [{ repeatPenalty: 0 }, "repeatPenalty must be > 0 (1 = off), got 0"],
    [{ minKeep: -1 }, "minKeep must be an integer ≥ 0, got -1"],
    [{ temp: NaN }, "temp must be a finite number, got NaN"],
    [{ topP: "0.5" }, "topP must be a finite number, got 0.5"],
    [{ seed: -1 }, "seed must be an integer in [0, 4294967295], got -1"],
    [{ seed: 2 ** 32 }, "seed must be an integer in [0, 4294967295], got 4294967296"],
    [{ seed: 1.5 }, "seed must be an integer in [0, 4294967295], got 1.5"],
    [{ top_p: 0.5 }, "unknown sampling parameter 'top_p'"],
  ];
  for (const [params, message] of cases) {
    const e = assertThrows(() => new Sampler(10, params as never), EdgeMoeError);
    assertEquals(e.code, "invalid_argument");
    assertEquals(e.message, `sampler: ${message}`);
  }
  assertThrows(() => new Sampler(0), EdgeMoeError, "vocabulary size must be an integer in [1, 16777216], got 0");
  const s = new Sampler(3);
  assertThrows(
    () => s.sample(new Float32Array(4)),
    EdgeMoeError,
    "logits must be a Float32Array of 3 values, got a Float32Array of 4",
  );
  assertThrows(() => s.sample([1, 2, 3] as never), EdgeMoeError, "got object");
  assertThrows(() => s.sample(new Float32Array([0, NaN, 1])), EdgeMoeError, "logit 1 is NaN");
  assertThrows(() => s.sample(new Float32Array([0, Infinity, 1])), EdgeMoeError, "logit 1 is Infinity");
  assertThrows(() => s.sample(new Float32Array(3).fill(-Infinity)), EdgeMoeError, "every logit is -Infinity");
  assertThrows(() => s.accept(3), EdgeMoeError, "token id 3 is outside the vocabulary [0, 3)");
  assertThrows(() => new Sampler(3, {}, { contextSize: 0 }), EdgeMoeError, "contextSize must be a positive integer");
  assertEquals(new Sampler(3, { seed: 0xffffffff }).params.seed < 0xffffffff, true);
});
