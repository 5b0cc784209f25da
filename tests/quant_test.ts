/**
 * edgemoe's quantized kernels against llama.cpp's libggml (tests/oracle/ggml.ts):
 * dequantization bit for bit, quantizer RMSE within 2% of ggml_quantize_chunk's,
 * matvec close to GGML's vec_dot on the same weights, and results bit-identical
 * across thread counts and across the base/avx512 library variants.
 */
import { EdgeMoeError, GGML_TYPES, ggmlTypeByName, type GgmlTypeName, NativeLibrary } from "../mod.ts";
import { Ggml } from "./oracle/ggml.ts";
import { assert, assertEquals, assertThrows } from "../src/std/assert.ts";

/** The types of this suite (the K-quants have their own, tests/kquant_test.ts, and join only the thread test). */
const WEIGHT_TYPES = ["f16", "bf16", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0"] as const satisfies GgmlTypeName[];

/** A deterministic stream in [-1, 1). */
function rand(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  };
}

/** Weights like a model's: mostly small, some outliers, some exact zeros. */
function weights(n: number, seed: number): Float32Array {
  const next = rand(seed);
  return new Float32Array(n).map((_, i) => (i % 53 === 7 ? 0 : next() * (i % 89 < 2 ? 6 : 0.5)));
}

function rmse(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return Math.sqrt(s / a.length);
}

/** Random block bytes whose f16 scale fields (first 2 or 4 bytes of a block) are finite. */
function randomBlocks(type: GgmlTypeName, n: number, seed: number): Uint8Array {
  const { blockElems, blockBytes } = ggmlTypeByName(type);
  const next = rand(seed);
  const out = new Uint8Array((n / blockElems) * blockBytes).map(() => (next() + 1) * 128);
  const v = new DataView(out.buffer);
  const halves = blockElems === 1 ? 0 : type.endsWith("_1") ? 2 : 1;
  for (let b = 0; b < out.length; b += blockBytes) {
    for (let h = 0; h < halves; h++) v.setFloat16(b + 2 * h, next() * 0.1, true);
  }
  if (type === "f16") { for (let i = 0; i < n; i++) v.setFloat16(2 * i, next() * 100, true); }
  if (type === "bf16") {
    for (let i = 0; i < n; i++) {
      v.setUint16(2 * i, (v.getUint16(2 * i, true) & 0x7fff) >> 1, true);
    }
  }
  return out;
}

function bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

Deno.test("dequantize equals libggml's to_float bit for bit", () => {
  using lib = NativeLibrary.open();
  using g = Ggml.open();
  const n = 32 * 40;
  for (const type of WEIGHT_TYPES) {
    const id = ggmlTypeByName(type).id;
    for (const src of [randomBlocks(type, n, id), g.quantize(id, weights(n, id), n)]) {
      assertEquals(bits(lib.dequantize(type, src, n)), bits(g.dequantize(id, src, n)), `${type}`);
    }
  }
});

Deno.test("GGML_TYPES agrees with libggml's type traits", () => {
  using g = Ggml.open();
  for (const t of GGML_TYPES) {
    const info = g.info(t.id);
    assertEquals([info.name, info.blockElems, info.blockBytes], [
      t.name.replace("_k", "_K"),
      t.blockElems,
      t.blockBytes,
    ]);
  }
});

Deno.test("quantizers: RMSE within 2% of ggml_quantize_chunk, bytes mostly identical", () => {
  using lib = NativeLibrary.open();
  using g = Ggml.open();
  const n = 4096 * 8;
  const x = weights(n, 11);
  for (const type of WEIGHT_TYPES) {
    const id = ggmlTypeByName(type).id;
    const ours = lib.quantize(type, x);
    const ref = g.quantize(id, x, n);
    const e1 = rmse(x, g.dequantize(id, ours, n)), e0 = rmse(x, g.dequantize(id, ref, n));
    assert(e1 <= e0 * 1.02 + 1e-12, `${type}: RMSE ${e1} vs ggml ${e0}`);
    const { blockBytes } = ggmlTypeByName(type);
    let same = 0;
    for (let b = 0; b < ours.length; b += blockBytes) {
      if (ours.subarray(b, b + blockBytes).every((v, i) => v === ref[b + i])) same++;
    }
    const blocks = ours.length / blockBytes;
    console.log(
      `  ${type}: RMSE ${e1.toExponential(3)} (ggml ${e0.toExponential(3)}), identical blocks ${same}/${blocks}`,
    );
    assert(same >= blocks * 0.99, `${type}: only ${same}/${blocks} blocks identical to ggml's`);
  }
  // Q8_1 is an activation format: compare with GGML's reference row quantizer.
  const ours = lib.quantize("q8_1", x), ref = g.quantizeRef(ggmlTypeByName("q8_1").id, x);
  assertEquals(ours, ref);
});

Deno.test("matvec is close to libggml's vec_dot on the same quantized weights", () => {
  using lib = NativeLibrary.open();
  using g = Ggml.open();
  const rows = 67, cols = 32 * 24;
  const x = weights(cols, 5);
  for (const type of [...WEIGHT_TYPES, "f32"] as const) {
    const id = ggmlTypeByName(type).id;
    const w = lib.quantize(type, weights(rows * cols, 9));
    const wf = lib.dequantize(type, w, rows * cols);
    const y = new Float32Array(rows);
    lib.matvec(type, w, x, y, rows, cols);
    const ref = g.matvec(id, w, x, rows, cols);
    // Both sides round x to the weight type's vec_dot_type (F16, BF16, Q8_x; f32
    // stays), so only the summation order differs: ~1e-8 of Σ|wx| for the float
    // types (unrounded BF16 activations would be off by up to 2^-9 of it).
    const tol = type === "bf16" || type === "f16" || type === "f32" ? 1e-6 : 1e-4;
    for (let r = 0; r < rows; r++) {
      let mag = 0;
      for (let c = 0; c < cols; c++) mag += Math.abs(wf[r * cols + c] * x[c]);
      assert(Math.abs(y[r] - ref[r]) <= tol * mag + 1e-6, `${type} row ${r}: ${y[r]} vs ggml ${ref[r]} (Σ|wx| ${mag})`);
    }
  }
});

Deno.test("matvec: bit-identical for 1, 2 and 3 threads and for the base and avx512 builds", () => {
  const libs = [NativeLibrary.open({ variant: "base" })];
  try {
    libs.push(NativeLibrary.open({ variant: "avx512" }));
  } catch (e) {
    assert(e instanceof EdgeMoeError && e.code === "unsupported", String(e));
  }
  try {
    const rows = 301;
    for (const type of [...WEIGHT_TYPES, "q2_k", "q3_k", "q4_k", "q5_k", "q6_k"] as const) {
      const cols = ggmlTypeByName(type).blockElems === 256 ? 256 * 5 : 32 * 33;
      const x = weights(cols, 3);
      const w = libs[0].quantize(type, weights(rows * cols, 4));
      let first: Uint32Array | undefined;
      for (const lib of libs) {
        for (const threads of [1, 2, 3]) {
          using pool = lib.createPool(threads);
          const y = new Float32Array(rows);
          lib.matvec(type, w, x, y, rows, cols, pool);
          first ??= bits(y).slice();
          assertEquals(bits(y), first, `${type} ${lib.variant} ${threads} threads`);
        }
      }
    }
  } finally {
    for (const lib of libs) lib.close();
  }
});

Deno.test("matmul: every token's outputs equal matvec's bit for bit and are close to libggml's, any thread count", () => {
  using lib = NativeLibrary.open();
  using g = Ggml.open();
  using pool = lib.createPool(2);
  const rows = 67, nTokens = 5;
  for (const type of [...WEIGHT_TYPES, "f32", "q2_k", "q3_k", "q4_k", "q5_k", "q6_k"] as const) {
    const cols = ggmlTypeByName(type).blockElems === 256 ? 256 * 3 : 32 * 24;
    const id = ggmlTypeByName(type).id;
    const w = lib.quantize(type, weights(rows * cols, 21));
    const wf = lib.dequantize(type, w, rows * cols);
    const x = weights(nTokens * cols, 22);
    const y = new Float32Array(nTokens * rows);
    lib.matmul(type, w, x, y, rows, cols, nTokens, pool);
    const one = new Float32Array(nTokens * rows);
    lib.matmul(type, w, x, one, rows, cols, nTokens);
    assertEquals(bits(one), bits(y), `${type}: 1 vs 2 threads`);
    for (let i = 0; i < nTokens; i++) {
      const xi = x.subarray(i * cols, (i + 1) * cols), yi = y.subarray(i * rows, (i + 1) * rows);
      const want = new Float32Array(rows);
      lib.matvec(type, w, xi, want, rows, cols);
      assertEquals(bits(yi), bits(want), `${type} token ${i}`);
      const ref = g.matvec(id, w, xi, rows, cols);
      const tol = type === "bf16" ? 8e-3 : 1e-4;
      for (let r = 0; r < rows; r++) {
        let mag = 0;
        for (let c = 0; c < cols; c++) mag += Math.abs(wf[r * cols + c] * xi[c]);
        assert(Math.abs(yi[r] - ref[r]) <= tol * mag + 1e-6, `${type} token ${i} row ${r}: ${yi[r]} vs ggml ${ref[r]}`);
      }
    }
  }
  assertThrows(
    () => lib.matmul("q8_0", new Uint8Array(68), new Float32Array(64), new Float32Array(6), 2, 32, 3),
    EdgeMoeError,
    "x has 64 elements, expected 96",
  );
  assertThrows(
    () => lib.matmul("q8_0", new Uint8Array(68), new Float32Array(96), new Float32Array(6), 2, 32, 1.5),
    EdgeMoeError,
    "nTokens must be a non-negative integer",
  );
});

Deno.test("matmulMany: every product's outputs equal its own matmul bit for bit (mixed types, shared x, views), bad input refused", () => {
  using lib = NativeLibrary.open();
  using pool = lib.createPool(2);
  // One x shared by "gate" and "up" of two experts of different types, a product whose x is a view into
  // another buffer, and a product of several tokens; outputs are views of one buffer, as a layer uses them.
  const cols = 512, x = weights(3 * cols + 8, 31).subarray(8);
  const specs = [
    { type: "q4_k", rows: 40, x: x.subarray(0, cols), n: 1 },
    { type: "q4_k", rows: 40, x: x.subarray(0, cols), n: 1 },
    { type: "q8_0", rows: 24, x: x.subarray(0, cols), n: 1 },
    { type: "q6_k", rows: 9, x: x.subarray(cols, 3 * cols), n: 2 },
    { type: "f16", rows: 5, x, n: 3 },
  ] as const;
  const out = new Float32Array(specs.reduce((a, s) => a + s.rows * s.n, 0));
  let at = 0;
  const items = specs.map((s, i) => {
    const y = out.subarray(at, at + s.rows * s.n);
    at += s.rows * s.n;
    return {
      type: s.type,
      w: lib.quantize(s.type, weights(s.rows * cols, 40 + i)),
      x: s.x,
      y,
      rows: s.rows,
      cols,
      nTokens: s.n,
    };
  });
  for (const p of [undefined, pool]) {
    out.fill(NaN);
    lib.matmulMany(items, p);
    for (const it of items) {
      const want = new Float32Array(it.y.length);
      lib.matmul(it.type, it.w, it.x, want, it.rows, it.cols, it.nTokens);
      assertEquals(bits(it.y), bits(want), `${it.type} ${p ? 2 : 1} threads`);
    }
  }
  assertThrows(() => lib.matmulMany([items[0], { ...items[1], y: out.subarray(10, 50) }]), EdgeMoeError, "overlap");
  assertThrows(
    () => lib.matmulMany([items[0], { ...items[1], x: x.subarray(0, 100) }]),
    EdgeMoeError,
    "product 1: x has 100 elements, expected 512",
  );
  lib.matmulMany([], pool);
});

Deno.test("quantized kernels refuse bad shapes, types and values with clear errors", () => {
  using lib = NativeLibrary.open();
  const e = assertThrows(() => lib.quantize("q4_0", new Float32Array(33)), EdgeMoeError, "not a multiple");
  assertEquals(e.code, "invalid_argument");
  assertThrows(
    () => lib.dequantize("q8_0", new Uint8Array(33), 32),
    EdgeMoeError,
    "src bytes has 33 elements, expected 34",
  );
  assertThrows(
    () => lib.matvec("q4_0", new Uint8Array(35), new Float32Array(32), new Float32Array(2), 2, 32),
    EdgeMoeError,
    "w bytes has 35 elements, expected 36",
  );
  assertThrows(
    () => lib.matvec("q8_1", new Uint8Array(36), new Float32Array(32), new Float32Array(1), 1, 32),
    EdgeMoeError,
    "q8_1 is an activation format",
  );
  assertThrows(() => lib.quantize("q8_0", new Float32Array(32).fill(NaN)), EdgeMoeError, "src[0] is nan");
  const odd = new Uint8Array(35).subarray(1);
  assertThrows(
    () => lib.matvec("q8_0", odd, new Float32Array(32), new Float32Array(1), 1, 32),
    EdgeMoeError,
    "w is not aligned to 2 bytes",
  );
  assertThrows(() => lib.createPool(0), EdgeMoeError, "threads must be an integer in 1..256");
  const pool = lib.createPool(2);
  pool.close();
  pool.close();
  assertThrows(
    () => lib.matvec("q8_0", new Uint8Array(34), new Float32Array(32), new Float32Array(1), 1, 32, pool),
    EdgeMoeError,
    "the thread pool was closed",
  );
});
