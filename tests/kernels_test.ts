import { NativeLibrary } from "../mod.ts";
import { EdgeMoeError } from "../src/errors.ts";
import { assert, assertAlmostEquals, assertEquals, assertThrows } from "../src/std/assert.ts";

/** A deterministic stream of floats in [-1, 1). */
function rand(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  };
}

/** The f64 reference `W·x`, and Σ|w·x| per row for the error bound. */
function reference(w: ArrayLike<number>, x: Float32Array, rows: number, cols: number): { y: number[]; mag: number[] } {
  const y: number[] = [], mag: number[] = [];
  for (let r = 0; r < rows; r++) {
    let s = 0, m = 0;
    for (let c = 0; c < cols; c++) {
      const p = w[r * cols + c] * x[c];
      s += p;
      m += Math.abs(p);
    }
    y.push(s);
    mag.push(m);
  }
  return { y, mag };
}

const variants = ["base", "avx512"] as const;

for (const variant of variants) {
  Deno.test(`matvec f32 (${variant}) matches the f64 reference`, (t) => {
    let lib: NativeLibrary;
    try {
      lib = NativeLibrary.open({ variant });
    } catch (e) {
      // Only the avx512 variant may be refused, and only on a CPU without it.
      assert(variant === "avx512" && e instanceof EdgeMoeError && e.code === "unsupported", String(e));
      return void t.name;
    }
    using _ = lib;
    const next = rand(1);
    for (const [rows, cols] of [[1, 1], [3, 7], [17, 64], [33, 1000], [8, 4096]]) {
      const w = new Float32Array(rows * cols).map(next);
      const x = new Float32Array(cols).map(next);
      const y = new Float32Array(rows);
      lib.matvecF32(w, x, y, rows, cols);
      const ref = reference(w, x, rows, cols);
      for (let r = 0; r < rows; r++) assertAlmostEquals(y[r], ref.y[r], 1e-6 * (ref.mag[r] + 1));
    }
  });
}

Deno.test("matvec f16 matches the f64 reference on the widened weights and f16-rounded activations", () => {
  using lib = NativeLibrary.open();
  const next = rand(2);
  const rows = 19, cols = 333;
  const w = new Float16Array(rows * cols).map(next);
  const x = new Float32Array(cols).map(next);
  const y = new Float32Array(rows);
  lib.matvecF16(new Uint16Array(w.buffer), x, y, rows, cols);
  // As GGML, the activations are rounded to f16 (F16's vec_dot_type) before the dot.
  const ref = reference(w, Float32Array.from(new Float16Array(x)), rows, cols);
  for (let r = 0; r < rows; r++) assertAlmostEquals(y[r], ref.y[r], 1e-6 * (ref.mag[r] + 1));
  // Unrounded activations would be measurably off: the test sees the rounding.
  const exact = reference(w, x, rows, cols);
  assert(y.some((v, r) => Math.abs(v - exact.y[r]) > 1e-5 * exact.mag[r]), "x was not rounded to f16");
});

Deno.test("base and avx512 variants give bit-identical results", () => {
  using base = NativeLibrary.open({ variant: "base" });
  let wide: NativeLibrary;
  try {
    wide = NativeLibrary.open({ variant: "avx512" });
  } catch {
    return; // CPU without AVX-512: nothing to compare.
  }
  using _ = wide;
  const next = rand(3);
  const rows = 64, cols = 2048 + 13;
  const w = new Float32Array(rows * cols).map(next);
  const x = new Float32Array(cols).map(next);
  const a = new Float32Array(rows), b = new Float32Array(rows);
  base.matvecF32(w, x, a, rows, cols);
  wide.matvecF32(w, x, b, rows, cols);
  assertEquals(new Uint32Array(a.buffer), new Uint32Array(b.buffer));
});

Deno.test("dot f32 of known vectors", () => {
  using lib = NativeLibrary.open();
  assertEquals(lib.dotF32(new Float32Array([1, 2, 3]), new Float32Array([4, 5, 6])), 32);
  assertEquals(lib.dotF32(new Float32Array(0), new Float32Array(0)), 0);
});

Deno.test("shape errors are invalid_argument with what was expected and found", () => {
  using lib = NativeLibrary.open();
  const e = assertThrows(
    () => lib.matvecF32(new Float32Array(5), new Float32Array(2), new Float32Array(3), 3, 2),
    EdgeMoeError,
    "w has 5 elements, expected 6",
  );
  assertEquals(e.code, "invalid_argument");
  assertThrows(
    () => lib.dotF32(new Float32Array(2), new Float32Array(3)),
    EdgeMoeError,
    "b has 3 elements, expected 2",
  );
  assertThrows(
    () => lib.matvecF32(new Float32Array(0), new Float32Array(0), new Float32Array(0), -1, 0),
    EdgeMoeError,
    "rows must be a non-negative integer",
  );
});

Deno.test("a closed library refuses calls and close is idempotent", () => {
  const lib = NativeLibrary.open();
  lib.close();
  lib.close();
  const e = assertThrows(() => lib.dotF32(new Float32Array(1), new Float32Array(1)), EdgeMoeError);
  assertEquals(e.code, "closed");
});
