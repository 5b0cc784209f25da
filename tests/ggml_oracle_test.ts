/**
 * The llama.cpp oracle (tests/oracle/ggml.ts) itself: struct offsets and
 * function pointers are right if hand-built blocks decode, quantize and dot
 * to values worked out by hand from GGML's block formats.
 */
import { Ggml } from "./oracle/ggml.ts";
import { assert, assertEquals } from "../src/std/assert.ts";

const F16 = 1, Q4_0 = 2, Q8_0 = 8, Q8_1 = 9, Q4_K = 12, Q8_K = 15;

/** A q8_0 block: f16 scale `d` bits, then 32 signed bytes. */
function q80Block(dBits: number, qs: number[]): Uint8Array {
  const b = new Uint8Array(34);
  new DataView(b.buffer).setUint16(0, dBits, true);
  b.set(new Uint8Array(new Int8Array(qs).buffer), 2);
  return b;
}

Deno.test("ggml oracle: type traits match GGML's block sizes", () => {
  using g = Ggml.open();
  assert(/^libggml-cpu-.*\.so$/.test(g.cpuLibrary), g.cpuLibrary);
  assertEquals(g.info(Q4_0), { name: "q4_0", blockElems: 32, blockBytes: 18, isQuantized: true, vecDotType: Q8_0 });
  assertEquals(g.info(Q4_K).vecDotType, Q8_K);
  assertEquals(g.info(Q4_K).blockBytes, 144);
  assertEquals(g.info(Q8_1).blockBytes, 36);
  assertEquals(g.bytes(Q8_0, 64), 68);
});

Deno.test("ggml oracle: dequantize, quantize and vec_dot of hand-built q8_0 blocks", () => {
  using g = Ggml.open();
  const qs = Array.from({ length: 32 }, (_, i) => i - 16);
  const block = q80Block(0x3800, qs); // d = 0.5
  assertEquals([...g.dequantize(Q8_0, block, 32)], qs.map((q) => q * 0.5));
  // Values -16..15 times 0.5: amax 8, so d = 8/127 and q = round(x/d).
  const x = new Float32Array(qs.map((q) => q * 0.5));
  const q = g.quantize(Q8_0, x, 32);
  const back = g.dequantize(Q8_0, q, 32);
  for (let i = 0; i < 32; i++) assert(Math.abs(back[i] - x[i]) <= 8 / 127 / 2 + 1e-3, `element ${i}`);
  assertEquals(new Int8Array(q.buffer, 2, 32)[0], -127);
  // q8_0 · q8_0 with d = 0.5 each: 0.25 * Σ q².
  const sumSq = qs.reduce((s, v) => s + v * v, 0);
  assertEquals(g.vecDot(Q8_0, 32, block, block), 0.25 * sumSq);
  // The same through matvec (x converted by the CPU backend's from_float).
  const y = g.matvec(Q8_0, new Uint8Array([...block, ...block]), x, 2, 32);
  assert(Math.abs(y[0] - 0.25 * sumSq) < 0.05 * 0.25 * sumSq, `matvec ${y[0]}`);
});

Deno.test("ggml oracle: q8_1 reference quantizer stores s = d * sum(q)", () => {
  using g = Ggml.open();
  const x = new Float32Array(32).map((_, i) => (i % 3) - 1);
  const b = g.quantizeRef(Q8_1, x);
  const v = new DataView(b.buffer);
  const qs = new Int8Array(b.buffer, 4, 32);
  assertEquals(qs[2], 127); // x = 1 is the absolute max
  const sum = qs.reduce((s, q) => s + q, 0);
  assertEquals(sum, -127);
  // s is rounded from the f32 scale (1/127), not from the stored f16 one.
  assertEquals(v.getFloat16(2, true), Math.f16round(Math.fround(sum * Math.fround(1 / 127))));
});

Deno.test("ggml oracle: f16 to_float widens exact halves", () => {
  using g = Ggml.open();
  const h = new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x0001]);
  assertEquals([...g.dequantize(F16, new Uint8Array(h.buffer), 4)], [1, -2, 65504, 2 ** -24]);
});
