/**
 * The K-quants (Q2_K … Q6_K weights, Q8_K activations) against llama.cpp's
 * libggml (tests/oracle/ggml.ts): dequantization bit for bit, Q8_K
 * quantization byte for byte, quantizer RMSE within 5% of
 * ggml_quantize_chunk's, and matvec close to GGML's vec_dot on the same
 * weight blocks and the same Q8_K activations.
 */
import { ggmlTypeByName, type GgmlTypeName, NativeLibrary } from "../mod.ts";
import { Ggml } from "./oracle/ggml.ts";
import { assert, assertEquals, assertThrows } from "../src/std/assert.ts";
import { EdgeMoeError } from "../src/errors.ts";

const K_TYPES = ["q2_k", "q3_k", "q4_k", "q5_k", "q6_k"] as const satisfies GgmlTypeName[];

/** Byte offsets of each block's f16 scale fields (GGML's block_qN_K). */
const HALF_FIELDS: Record<(typeof K_TYPES)[number], number[]> = {
  q2_k: [80, 82],
  q3_k: [108],
  q4_k: [0, 2],
  q5_k: [0, 2],
  q6_k: [208],
};

/** A deterministic stream in [0, 1). */
function rand(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** Weights like a model's: Gaussian (σ 0.02), one in 64 six times larger, some exact zeros. */
function weights(n: number, seed: number): Float32Array {
  const next = rand(seed);
  return new Float32Array(n).map((_, i) => {
    if (i % 97 === 13) return 0;
    const g = Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
    return g * 0.02 * (next() < 1 / 64 ? 6 : 1);
  });
}

/** Random block bytes with finite f16 scales. */
function randomBlocks(type: (typeof K_TYPES)[number], n: number, seed: number): Uint8Array {
  const { blockElems, blockBytes } = ggmlTypeByName(type);
  const next = rand(seed);
  const out = new Uint8Array((n / blockElems) * blockBytes).map(() => next() * 256);
  const v = new DataView(out.buffer);
  for (let b = 0; b < out.length; b += blockBytes) {
    for (const o of HALF_FIELDS[type]) v.setFloat16(b + o, (next() - 0.3) * 0.01, true);
  }
  return out;
}

function rmse(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return Math.sqrt(s / a.length);
}

function bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

Deno.test("K-quants: dequantize equals libggml's to_float bit for bit", () => {
  using lib = NativeLibrary.open();
  using g = Ggml.open();
  const n = 256 * 48;
  for (const type of K_TYPES) {
    const id = ggmlTypeByName(type).id;
    for (const src of [randomBlocks(type, n, id), g.quantize(id, weights(n, id), 256, n / 256)]) {
      assertEquals(bits(lib.dequantize(type, src, n)), bits(g.dequantize(id, src, n)), type);
    }
  }
});

Deno.test("Q8_K: quantize equals the CPU backend's from_float byte for byte; dequantize is d·q", () => {
  using lib = NativeLibrary.open();
  using g = Ggml.open();
  const n = 256 * 16;
  const next = rand(3);
  const x = new Float32Array(n).map(() => next() * 2 - 1);
  x.fill(0, 256, 512); // an all-zero block
  x[700] = 40; // one large value
  const ours = lib.quantize("q8_k", x);
  assertEquals(ours, g.fromFloat(ggmlTypeByName("q8_k").id, x));
  // libggml has no to_float for Q8_K: its value is d·qs[i] (f32 d at byte 0, i8 qs at byte 4 of 292).
  const v = new DataView(ours.buffer);
  const want = new Float32Array(n).map((_, i) => {
    const b = Math.floor(i / 256) * 292;
    return Math.fround(v.getFloat32(b, true) * v.getInt8(b + 4 + (i % 256)));
  });
  assertEquals(bits(lib.dequantize("q8_k", ours, n)), bits(want));
});

Deno.test("K-quant quantizers: RMSE within 5% of ggml_quantize_chunk's", () => {
  using lib = NativeLibrary.open();
  using g = Ggml.open();
  const cols = 4096, rows = 16, n = rows * cols;
  for (
    const [name, x] of [["gaussian+outliers", weights(n, 11)], [
      "smooth",
      new Float32Array(n).map((_, i) => Math.sin(i * 0.37) * 0.05 + (i % 5) * 0.01),
    ]] as const
  ) {
    for (const type of K_TYPES) {
      const id = ggmlTypeByName(type).id;
      const ours = rmse(x, g.dequantize(id, lib.quantize(type, x), n));
      const ref = rmse(x, g.dequantize(id, g.quantize(id, x, cols, rows), n));
      console.log(
        `  ${type} (${name}): RMSE ${ours.toExponential(3)}, ggml ${ref.toExponential(3)}, ratio ${
          (ours / ref).toFixed(4)
        }`,
      );
      assert(ours <= ref * 1.05, `${type} (${name}): RMSE ${ours} > 1.05 x ggml's ${ref}`);
    }
  }
});

Deno.test("K-quant matvec is close to libggml's vec_dot on the same blocks and Q8_K activations", () => {
  using lib = NativeLibrary.open();
  using g = Ggml.open();
  const rows = 24, cols = 256 * 12;
  const next = rand(5);
  const x = new Float32Array(cols).map(() => next() * 2 - 1);
  const a = lib.quantize("q8_k", x); // the activations matvec uses (equal to GGML's, tested above)
  const af = lib.dequantize("q8_k", a, cols);
  for (const type of K_TYPES) {
    const id = ggmlTypeByName(type).id;
    const w = g.quantize(id, weights(rows * cols, id + 100), cols, rows);
    const wf = g.dequantize(id, w, rows * cols);
    const rowBytes = w.length / rows;
    const y = new Float32Array(rows);
    lib.matvec(type, w, x, y, rows, cols);
    let maxDiff = 0;
    for (let r = 0; r < rows; r++) {
      const ref = g.vecDot(id, cols, w.subarray(r * rowBytes, (r + 1) * rowBytes), a);
      let mag = 0;
      for (let c = 0; c < cols; c++) mag += Math.abs(wf[r * cols + c] * af[c]);
      maxDiff = Math.max(maxDiff, Math.abs(y[r] - ref));
      assert(Math.abs(y[r] - ref) <= 1e-5 * mag, `${type} row ${r}: ${y[r]} vs ggml ${ref} (Σ|wa| ${mag})`);
    }
    console.log(`  ${type}: max |ours - ggml vec_dot| = ${maxDiff.toExponential(2)}`);
  }
});

Deno.test("K-quants: Q8_K is refused as a weight type; partial blocks, non-finite and too-large values are refused", () => {
  using lib = NativeLibrary.open();
  assertThrows(
    () => lib.matvec("q8_k", new Uint8Array(292), new Float32Array(256), new Float32Array(1), 1, 256),
    EdgeMoeError,
    "q8_k is an activation format",
  );
  assertThrows(
    () => lib.quantize("q4_k", new Float32Array(512 + 32)),
    EdgeMoeError,
    "is not a multiple of the q4_k block size 256",
  );
  const e = assertThrows(
    () => lib.quantize("q6_k", new Float32Array(256).fill(Infinity)),
    EdgeMoeError,
    "src[0] is inf",
  );
  assertEquals(e.code, "invalid_argument");
  // Beyond what an f16 block scale can hold: refused, not turned into inf/NaN.
  const big = new Float32Array(512).fill(0.5);
  big[300] = -1e7;
  assertThrows(() => lib.quantize("q4_k", big), EdgeMoeError, "src[300] is -10000000, beyond ±3500000");
  big[300] = 1e6;
  assertThrows(() => lib.quantize("q2_k", big), EdgeMoeError, "beyond ±800000");
  assert(lib.dequantize("q6_k", lib.quantize("q6_k", big), 512).every(Number.isFinite));
});
