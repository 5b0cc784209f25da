import {
  combinedPredictor,
  lookaheadPredictor,
  noPredictor,
  type PredictionContext,
  ProfileBuilder,
  profileFromJson,
  profileToJson,
  tablePredictor,
} from "../src/predictor/predictor.ts";
import { EdgeMoeError } from "../src/errors.ts";
import { assertEquals, assertThrows } from "../src/std/assert.ts";

const ctx = (routed: (Uint32Array | undefined)[], logits = new Float32Array(4)): PredictionContext => ({
  hidden: new Float32Array(4),
  routed,
  routerLogits: () => logits,
});

Deno.test("table predictor: follows the profiled transitions and scores itself", () => {
  const b = new ProfileBuilder(2, 4);
  // Expert 1 in layer 0 is always followed by experts 2 and 3 in layer 1.
  for (let i = 0; i < 5; i++) {
    b.record(0, new Uint32Array([1, 0]));
    b.record(1, new Uint32Array([3, 2]));
  }
  b.record(0, new Uint32Array([0]));
  b.record(1, new Uint32Array([0]));
  const p = tablePredictor(profileFromJson(profileToJson(b.profile())), 2);
  assertEquals([...p.predict(1, ctx([new Uint32Array([1])]))].sort(), [2, 3]);
  p.observe(1, new Uint32Array([3, 0]));
  assertEquals(p.stats(), {
    predicted: 2,
    correct: 1,
    actual: 2,
    perLayer: [{ predicted: 0, correct: 0, actual: 0 }, { predicted: 2, correct: 1, actual: 2 }],
  });
  assertEquals(p.predict(0, ctx([])).length, 0); // nothing precedes layer 0
});

Deno.test("lookahead predictor: top-k of the next router's logits", () => {
  const p = lookaheadPredictor(2);
  assertEquals([...p.predict(1, ctx([], new Float32Array([0.1, 5, -1, 3])))], [1, 3]);
  assertEquals(noPredictor().predict(1, ctx([])).length, 0);
  assertThrows(() => lookaheadPredictor(0), EdgeMoeError, "depth");
});

Deno.test("profile files are validated", () => {
  const good = JSON.parse(profileToJson(new ProfileBuilder(2, 2).profile()));
  const cases: [unknown, string][] = [
    ["{", "not JSON"],
    [{ ...good, format: "x" }, '"format"'],
    [{ ...good, nExperts: -1 }, '"nExperts"'],
    [{ ...good, frequency: [[0, 0]] }, '"frequency" must be an array of 2 rows'],
    [{ ...good, transitions: [[0, 0, 0, "1"]] }, "not a count"],
  ];
  for (const [v, msg] of cases) {
    const e = assertThrows(() => profileFromJson(typeof v === "string" ? v : JSON.stringify(v)), EdgeMoeError, msg);
    assertEquals(e.code, "corrupt_data");
  }
  assertEquals(
    assertThrows(() => profileFromJson(JSON.stringify({ ...good, version: 9 })), EdgeMoeError).code,
    "unsupported",
  );
});

Deno.test("predictor counters are exact on a replayed routing trace", () => {
  // A trace of 3 tokens × 3 layers, and the lookahead guesses made from fixed router logits.
  const trace = [[[0, 1], [2, 3], [1, 2]], [[1, 2], [2, 0], [3, 1]], [[3, 0], [1, 3], [0, 2]]];
  const logits = [new Float32Array([0, 0, 0, 0]), new Float32Array([1, 0, 3, 2]), new Float32Array([0, 4, 3, 0])];
  const p = lookaheadPredictor(2);
  const want = { predicted: 0, correct: 0, actual: 0 };
  for (const token of trace) {
    for (let l = 0; l < 3; l++) {
      if (l > 0) {
        const guess = [...p.predict(l, ctx([], logits[l]))];
        want.predicted += guess.length;
        want.actual += token[l].length;
        want.correct += token[l].filter((id) => guess.includes(id)).length;
      }
      p.observe(l, new Uint32Array(token[l]));
    }
  }
  const s = p.stats();
  assertEquals({ predicted: s.predicted, correct: s.correct, actual: s.actual }, want);
  assertEquals(want, { predicted: 12, correct: 8, actual: 12 });
  assertEquals([s.perLayer[1].correct, s.perLayer[2].correct], [4, 4]);
});

Deno.test("combined predictor: learns transitions while decoding and blends them in where look-ahead is wrong", () => {
  // Layer 0 routes to a = t mod 4; layer 1 to (a + 1) mod 4, while layer 1's router logits always favour expert 0.
  const logits = new Float32Array([5, 0, 0, 0]);
  const replay = (p: ReturnType<typeof combinedPredictor>, tokens: number) => {
    for (let t = 0; t < tokens; t++) {
      const routed = [new Uint32Array([t % 4])];
      p.observe(0, routed[0]);
      p.predict(1, ctx(routed, logits));
      p.observe(1, new Uint32Array([(t + 1) % 4]));
    }
    return p.stats();
  };
  // Without a profile: look-ahead alone first (right only when a = 3); the first cycle fills the table; at
  // token 4 the table's guess is seen to be right, and from token 5 on the chosen blend follows it.
  const learned = replay(combinedPredictor(1, 2, 4), 12);
  assertEquals([learned.predicted, learned.correct, learned.actual], [12, 8, 12]);
  assertEquals(replay(lookaheadPredictor(1), 12).correct, 3);
  // A profile of the same routing seeds the table: only the first guess (look-ahead, no evidence yet) is wrong.
  const b = new ProfileBuilder(2, 4);
  for (let a = 0; a < 4; a++) {
    b.record(0, new Uint32Array([a]));
    b.record(1, new Uint32Array([(a + 1) % 4]));
  }
  const seeded = replay(combinedPredictor(1, 2, 4, b.profile()), 12);
  assertEquals([seeded.predicted, seeded.correct, seeded.actual], [12, 11, 12]);
  assertThrows(() => combinedPredictor(1, 3, 4, b.profile()), EdgeMoeError, "profile is for 2 layers");
});
