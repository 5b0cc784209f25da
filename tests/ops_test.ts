/**
 * The native transformer ops (RMSNorm, RoPE, SwiGLU, softmax, attention over
 * an f32 or f16 KV cache) against llama.cpp's libggml computing the same op
 * graphs on the same random data (tests/oracle/ggml_graph.ts), and their
 * shape checks.
 */
import { EdgeMoeError, NativeLibrary } from "../mod.ts";
import { GgmlGraph } from "./oracle/ggml_graph.ts";
import { assert, assertEquals, assertThrows } from "../src/std/assert.ts";

/** A deterministic stream in [-1, 1). */
function rand(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  };
}

function data(n: number, seed: number, scale = 1): Float32Array {
  const next = rand(seed);
  return new Float32Array(n).map(() => next() * scale);
}

/** max |a − b| / (|b| + floor), printed with OK / NOT OK against `tol`. */
function check(what: string, ours: Float32Array, ref: Float32Array, tol: number, floor = 1): void {
  assertEquals(ours.length, ref.length, what);
  let worst = 0, at = 0;
  for (let i = 0; i < ref.length; i++) {
    const e = Math.abs(ours[i] - ref[i]) / (Math.abs(ref[i]) + floor);
    if (!(e <= worst)) [worst, at] = [e, i];
  }
  console.log(`  ${what}: max rel err ${worst.toExponential(2)} at ${at} ${worst <= tol ? "OK" : "NOT OK"}`);
  assert(worst <= tol, `${what}: ${ours[at]} vs ggml ${ref[at]} at ${at}`);
}

Deno.test("rms_norm, swiglu and softmax match libggml's on random rows", () => {
  using lib = NativeLibrary.open();
  using g = GgmlGraph.open();
  const n = 96, rows = 5;
  const x = data(rows * n, 1, 3), w = data(n, 2);
  const y = new Float32Array(x.length);
  lib.rmsNorm(x, w, 1e-6, y, n);
  check("rms_norm", y, g.rmsNorm(x, w, 1e-6, n), 1e-6, 1e-3);
  const gate = data(1000, 3, 8), up = data(1000, 4, 2);
  const s = new Float32Array(gate.length);
  lib.swiglu(gate, up, s);
  check("swiglu", s, g.swiglu(gate, up), 1e-6, 1e-3);
  const z = data(rows * 37, 5, 10);
  const ref = g.softmax(z, 37, 0.3);
  lib.softmax(z, 37, 0.3);
  check("softmax", z, ref, 1e-6, 1e-6);
});

Deno.test("rope matches libggml's ggml_rope_ext in NORM and NEOX modes, partial rotary dims included", () => {
  using lib = NativeLibrary.open();
  using g = GgmlGraph.open();
  const pos = Int32Array.from([0, 1, 7, 100, 4095]);
  for (const [headDim, nDims] of [[64, 64], [128, 128], [64, 32]] as const) {
    for (const mode of ["norm", "neox"] as const) {
      const x = data(pos.length * 3 * headDim, headDim + nDims, 2);
      const ref = g.rope(x, pos, 3, headDim, nDims, 1e6, mode === "neox");
      lib.rope(x, pos, { nHeads: 3, headDim, nDims, base: 1e6, mode });
      // Absolute error on inputs of magnitude ~2 (x0·cos − x1·sin cancels; GGML's build may fuse it into an FMA).
      check(`rope ${mode} head ${headDim} dims ${nDims}`, x, ref, 1e-6, 1);
    }
  }
});

Deno.test("attention over f32 and f16 KV caches matches llama.cpp's non-flash graph (GQA), any thread count", () => {
  using lib = NativeLibrary.open();
  using g = GgmlGraph.open();
  using pool = lib.createPool(2);
  for (const [nHead, nHeadKv, headDim, nKv] of [[4, 2, 64, 1], [8, 2, 64, 37], [6, 6, 128, 130], [4, 1, 32, 300]]) {
    const scale = Math.fround(1 / Math.sqrt(headDim));
    const q = data(nHead * headDim, nKv, 2);
    const kf = data(nKv * nHeadKv * headDim, nKv + 1, 2), vf = data(nKv * nHeadKv * headDim, nKv + 2);
    for (const kvType of ["f32", "f16"] as const) {
      const k = kvType === "f16" ? new Float16Array(kf) : kf, v = kvType === "f16" ? new Float16Array(vf) : vf;
      const shape = { nHead, nHeadKv, headDim, nKv, scale };
      const out = new Float32Array(nHead * headDim), out2 = new Float32Array(out.length);
      lib.attention(q, k, v, out, shape);
      lib.attention(q, k, v, out2, shape, pool);
      assertEquals(new Uint32Array(out2.buffer), new Uint32Array(out.buffer), "1 vs 2 threads");
      // f32: sum orders only. f16: both round q and the probabilities to f16 the same way.
      check(
        `attention ${kvType} ${nHead}/${nHeadKv} heads × ${headDim}, ${nKv} positions`,
        out,
        g.attention(q, k, v, shape),
        kvType === "f32" ? 1e-5 : 1e-4,
        1e-2,
      );
    }
  }
});

Deno.test("native ops refuse bad shapes with clear errors", () => {
  using lib = NativeLibrary.open();
  const x = new Float32Array(12);
  assertThrows(() => lib.rmsNorm(x, new Float32Array(5), 1e-6, x, 4), EdgeMoeError, "w has 5 elements, expected 4");
  assertThrows(
    () => lib.rmsNorm(x, undefined, 1e-6, x, 5),
    EdgeMoeError,
    "row length 5 must be a positive integer dividing 12",
  );
  assertThrows(
    () => lib.rope(x, Int32Array.from([0]), { nHeads: 2, headDim: 6, nDims: 8, base: 1e4, mode: "norm" }),
    EdgeMoeError,
    "n_dims 8 must be even, positive and at most head_dim 6",
  );
  assertThrows(
    () => lib.rope(x, Int32Array.from([0, 1]), { nHeads: 2, headDim: 6, nDims: 6, base: 1e4, mode: "neox" }),
    EdgeMoeError,
    "x has 12 elements, expected 24",
  );
  assertThrows(() => lib.swiglu(x, new Float32Array(3), x), EdgeMoeError, "u has 3 elements, expected 12");
  const shape = { nHead: 4, nHeadKv: 3, headDim: 3, nKv: 1, scale: 1 };
  assertThrows(
    () => lib.attention(x, new Float32Array(9), new Float32Array(9), new Float32Array(12), shape),
    EdgeMoeError,
    "n_head 4 is not a multiple of n_head_kv 3",
  );
  assertThrows(
    () => lib.attention(x, new Float16Array(6), new Float32Array(6), new Float32Array(12), { ...shape, nHeadKv: 2 }),
    EdgeMoeError,
    "both f32 or both f16",
  );
  assertThrows(
    () => lib.attention(x, new Float32Array(5), new Float32Array(6), new Float32Array(12), { ...shape, nHeadKv: 2 }),
    EdgeMoeError,
    "k has 5 elements, expected 6",
  );
});
