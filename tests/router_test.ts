import { createRouter, topK } from "../src/router/router.ts";
import { EdgeMoeError } from "../src/errors.ts";
import { assertAlmostEquals, assertEquals, assertThrows } from "../src/std/assert.ts";

Deno.test("topK: descending order, ties to the lower index", () => {
  assertEquals([...topK(new Float32Array([0.1, 3, -1, 3, 2]), 3)], [1, 3, 4]);
  assertEquals([...topK(new Float32Array([5]), 1)], [0]);
});

Deno.test("softmax→top-k without renormalisation keeps the softmax probabilities", () => {
  const r = createRouter({ k: 2, gating: "softmax_topk", normalize: false })(
    new Float32Array([0, Math.log(2), Math.log(5), 0]),
  );
  // probabilities: 1/9, 2/9, 5/9, 1/9
  assertEquals([...r.ids], [2, 1]);
  assertAlmostEquals(r.weights[0], 5 / 9, 1e-6);
  assertAlmostEquals(r.weights[1], 2 / 9, 1e-6);
});

Deno.test("softmax→top-k with renormalisation sums to one", () => {
  const r = createRouter({ k: 2, gating: "softmax_topk", normalize: true })(
    new Float32Array([0, Math.log(2), Math.log(5), 0]),
  );
  assertAlmostEquals(r.weights[0], 5 / 7, 1e-6);
  assertAlmostEquals(r.weights[1], 2 / 7, 1e-6);
});

Deno.test("top-k→softmax equals softmax over the kept logits", () => {
  const r = createRouter({ k: 2, gating: "topk_softmax", normalize: false })(new Float32Array([1, 4, 3, -2]));
  assertEquals([...r.ids], [1, 2]);
  assertAlmostEquals(r.weights[0], 1 / (1 + Math.exp(-1)), 1e-6);
});

Deno.test("bad k is an invalid_argument error", () => {
  assertThrows(() => createRouter({ k: 0, gating: "softmax_topk", normalize: false }), EdgeMoeError, "k must be");
  const r = createRouter({ k: 5, gating: "softmax_topk", normalize: false });
  assertThrows(() => r(new Float32Array(3)), EdgeMoeError, "only 3 experts");
});
