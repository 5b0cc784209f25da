/**
 * Bitwidth planning: the planners on synthetic costs (against brute force), the
 * plan file's validation, `convert --plan` (types as planned, accepted by
 * llama.cpp's gguf_init_from_file, logits equal to the same weights
 * dequantized), and the sensitivity measurement's invariants.
 */
import { createEngine, NativeLibrary } from "../mod.ts";
import { writeGguf } from "../src/gguf/writer.ts";
import { EdgeMoeError } from "../src/errors.ts";
import { GgufFile } from "../src/gguf/mod.ts";
import { ggmlTypeById, ggmlTypeByName, typeForRows } from "../src/gguf/types.ts";
import { ggufWeights } from "../src/models/gguf_weights.ts";
import { MoeModel } from "../src/models/model.ts";
import type { ModelWeights, TensorData } from "../src/models/weights.ts";
import { convertGgufToPack } from "../src/pack/convert.ts";
import { PackFile } from "../src/pack/reader.ts";
import { measureSensitivity, modelLogits, toF32 } from "../src/plan/measure.ts";
import { planFromJson, planToJson } from "../src/plan/plan_file.ts";
import { edgemoePlan, type ExpertCosts, knapsackPlan } from "../src/plan/planner.ts";
import { makePlan } from "../src/plan/solve.ts";
import { makeWindows } from "../src/quality/quality.ts";
import { tokenizerFromGguf } from "../src/tokenizer/mod.ts";
import { assert, assertEquals, assertThrows } from "../src/std/assert.ts";
import { llamaGguf } from "./gguf_oracle.ts";
import { FIXTURE_DIR } from "./oracle/reference.ts";

/** A deterministic generator (xorshift32) for synthetic costs. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
}

function bruteForce(experts: ExpertCosts[], maxBytes: number): number {
  let best = Infinity;
  const nT = experts[0].bytes.length;
  const rec = (i: number, bytes: number, loss: number) => {
    if (bytes > maxBytes) return;
    if (i === experts.length) {
      best = Math.min(best, loss);
      return;
    }
    for (let t = 0; t < nT; t++) rec(i + 1, bytes + experts[i].bytes[t], loss + experts[i].loss[t]);
  };
  rec(0, 0, 0);
  return best;
}

function synthetic(seed: number, n: number): ExpertCosts[] {
  const r = rng(seed);
  const sizes = [84, 110, 144, 176, 210, 272];
  return Array.from({ length: n }, () => {
    const scale = r() * 3;
    return { bytes: sizes, loss: sizes.map((b) => scale * Math.exp(-b / 40) * (0.5 + r())) };
  });
}

Deno.test("knapsack: the least loss within the byte budget, as brute force; never over budget", () => {
  for (let seed = 1; seed <= 20; seed++) {
    const experts = synthetic(seed, 5);
    for (const maxBytes of [420, 600, 777, 1000, 1360]) {
      const p = knapsackPlan(experts, { maxBytes });
      assert(p.bytes <= maxBytes, `seed ${seed}: ${p.bytes} > ${maxBytes}`);
      const opt = bruteForce(experts, maxBytes);
      assert(
        Math.abs(p.loss - opt) <= 1e-12 * Math.max(1, opt),
        `seed ${seed} budget ${maxBytes}: ${p.loss} vs ${opt}`,
      );
    }
  }
});

Deno.test("knapsack: a loss budget gives the fewest bytes reaching it", () => {
  const experts = synthetic(7, 4);
  const target = knapsackPlan(experts, { maxBytes: 700 }).loss;
  const p = knapsackPlan(experts, { maxLoss: target });
  assert(p.loss <= target * (1 + 1e-12));
  // Brute force: no combination with fewer bytes reaches the target.
  let fewest = Infinity;
  const rec = (i: number, b: number, l: number) => {
    if (i === experts.length) {
      if (l <= target * (1 + 1e-12)) fewest = Math.min(fewest, b);
      return;
    }
    for (let t = 0; t < 6; t++) rec(i + 1, b + experts[i].bytes[t], l + experts[i].loss[t]);
  };
  rec(0, 0, 0);
  assertEquals(p.bytes, fewest);
});

Deno.test("knapsack: coarsened byte units still respect the budget", () => {
  const experts = synthetic(3, 6);
  const p = knapsackPlan(experts, { maxBytes: 1000 }, 100);
  assert(p.bytes <= 1000);
});

Deno.test("edgemoe planner: K least important at the lower bracketing type, K the fewest that fit", () => {
  // Two types (1 and 2 bytes); moving an expert to the lower type adds loss[0] − loss[1].
  const experts: ExpertCosts[] = [
    { bytes: [1, 2], loss: [0.5, 0.1] }, // +0.4
    { bytes: [1, 2], loss: [0.2, 0.1] }, // +0.1
    { bytes: [1, 2], loss: [0.9, 0.0] }, // +0.9
    { bytes: [1, 2], loss: [0.3, 0.0] }, // +0.3
  ];
  const p = edgemoePlan(experts, { maxBytes: 6 });
  assertEquals(p.choice, [1, 0, 1, 0]);
  assertEquals(p.bytes, 6);
  assert(Math.abs(p.loss - 0.6) < 1e-12);
  assertEquals(edgemoePlan(experts, { maxBytes: 8 }).choice, [1, 1, 1, 1]);
  // A loss budget: the most experts at the lower type whose loss fits.
  const q = edgemoePlan(experts, { maxLoss: 0.65 });
  assertEquals(q.choice, [1, 0, 1, 0]);
  assertThrows(() => edgemoePlan(experts, { maxBytes: 3 }), EdgeMoeError, "cannot be met");
  assertThrows(() => knapsackPlan(experts, { maxBytes: 3 }), EdgeMoeError, "cannot be met");
  assertThrows(() => edgemoePlan(experts, { maxLoss: 0.1 }), EdgeMoeError, "cannot be met");
  assertThrows(() => knapsackPlan(experts, { maxLoss: 0.1 }), EdgeMoeError, "cannot be met");
});

Deno.test("edgemoe planner: with three types, brackets the budget between the two adjacent ones", () => {
  const experts = synthetic(11, 4).map((e) => ({ bytes: e.bytes.slice(1, 4), loss: e.loss.slice(1, 4) }));
  const p = edgemoePlan(experts, { maxBytes: 4 * 144 + 2 * 32 });
  assert(p.choice.every((t) => t === 1 || t === 2), `${p.choice}`);
  assert(p.bytes <= 4 * 144 + 2 * 32);
  assertEquals(p.choice.filter((t) => t === 2).length, 2);
});

function sampleSensitivity() {
  const experts = synthetic(5, 8);
  return {
    candidates: ["q2_k", "q3_k", "q4_k", "q5_k", "q6_k", "q8_0"],
    nLayers: 2,
    nExperts: 4,
    tokens: 100,
    frequency: [[0.5, 0.5, 0.5, 0.5], [0.25, 0.75, 0.5, 0.5]],
    kl: [0, 1].map((l) => [0, 1, 2, 3].map((e) => [...experts[l * 4 + e].loss])),
    bytes: [0, 1].map(() => [0, 1, 2, 3].map(() => [84, 110, 144, 176, 210, 272])),
    weightsPerExpert: [256, 256],
  };
}

Deno.test("plan file: round trip, both planners recorded, the budget respected", () => {
  const s = sampleSensitivity();
  const p = makePlan(s, { targetBits: 4 }, "m.gguf");
  const back = planFromJson(planToJson(p), "plan.json");
  assertEquals(back.types, p.types);
  assert(p.plans.knapsack.bits <= 4 && p.plans.edgemoe.bits <= 4);
  assert(p.plans.knapsack.loss <= p.plans.edgemoe.loss + 1e-12, "the knapsack is optimal, so never worse");
});

Deno.test("plan file: bad fields are named", () => {
  const good = JSON.parse(planToJson(makePlan(sampleSensitivity(), { targetBits: 5 }, "m.gguf")));
  const bad = (mutate: (j: Record<string, unknown>) => void, msg: string) => {
    const j = structuredClone(good);
    mutate(j);
    assertThrows(() => planFromJson(JSON.stringify(j), "p.json"), EdgeMoeError, msg);
  };
  bad((j) => (j.version = 2), `"version" must be 1`);
  bad((j) => (j.format = "x"), `"format"`);
  bad((j) => ((j.types as string[][])[1][2] = "q9_z"), `"types[1][2]" has unknown type "q9_z"`);
  bad((j) => (j.types as string[][])[0].pop(), `"types[0]" must list 4 experts, got 3`);
  bad((j) => (j.types as string[][]).pop(), `"types" must be an array of 2 layers`);
  bad((j) => (j.nExperts = 0), `"nExperts" must be an integer`);
  bad((j) => ((j.frequency as number[][])[0][0] = -1), `"frequency[0][0]"`);
  bad((j) => ((j.sensitivity as { kl: number[][][] }).kl[1][3] = [1]), `"sensitivity.kl[1][3]" must be 6 numbers`);
  assertThrows(() => planFromJson("{", "p.json"), EdgeMoeError, "p.json is not JSON");
});

const Q4KM = `${FIXTURE_DIR}qwen3moe-q4_k_m.gguf`;

/** `w` with every expert tensor replaced by its f32 dequantization. */
function dequantizedExperts(lib: NativeLibrary, w: ModelWeights): ModelWeights {
  const cache = new Map<string, TensorData>();
  return {
    ...w,
    arch: w.arch,
    number: (k) => w.number(k),
    bool: (k) => w.bool(k),
    tensor(name) {
      const t = w.tensor(name);
      if (!t || !/^blk\.\d+\.ffn_(gate|up|down)\.\d+\.weight$/.test(name)) return t;
      if (!cache.has(name)) {
        const f = toF32(lib, t);
        cache.set(name, { name, type: 0, dims: t.dims, data: new Uint8Array(f.buffer) });
      }
      return cache.get(name);
    },
  };
}

Deno.test("convert --plan: per-expert types as planned, llama.cpp parses the pack, logits equal the same weights dequantized", async () => {
  using lib = NativeLibrary.open();
  const dir = await Deno.makeTempDir();
  try {
    const names = ["q2_k", "q3_k", "q4_k", "q5_k", "q6_k", "q8_0", "q4_0", "q8_0"];
    const types = [0, 1].map((l) => [0, 1, 2, 3].map((e) => names[l * 4 + e]));
    const out = `${dir}/mixed.pack.gguf`;
    await convertGgufToPack(Q4KM, out, {
      checksum: (b) => lib.checksum64(b),
      plan: {
        method: "test",
        types,
        transcode: (bytes, from, to, n) =>
          lib.quantize(to as "q4_k", lib.dequantize(ggmlTypeById(from)!.name as "q4_k", bytes.slice(), n)),
      },
    });
    using pack = PackFile.open(out);
    for (const b of pack.blobs()) {
      const want = ggmlTypeByName(types[b.layer][b.expert]).id;
      for (const p of ["gate", "up", "down"] as const) assertEquals(b.tensors[p].type.id, want);
    }
    const view = llamaGguf(out);
    assert(view !== null, "llama.cpp's gguf_init_from_file refused the pack");
    assertEquals(view.tensors.find((t) => t.name === "blk.1.ffn_down.2.weight")?.type, ggmlTypeByName("q4_0").id);
    using file = GgufFile.open(out);
    const mixed = new MoeModel(ggufWeights(file), lib, { nCtx: 64 });
    const ref = new MoeModel(dequantizedExperts(lib, ggufWeights(file)), lib, { nCtx: 64 });
    const tokens = [287, 32, 113, 117, 396, 294, 114, 111, 119, 110, 326, 32, 404, 264];
    let max = 0, scale = 0;
    tokens.forEach((t, pos) => {
      const a = mixed.forward(t, pos), b = ref.forward(t, pos);
      for (let i = 0; i < a.length; i++) {
        max = Math.max(max, Math.abs(a[i] - b[i]));
        scale = Math.max(scale, Math.abs(b[i]));
      }
    });
    console.log(
      `  mixed pack vs dequantized weights: max |Δ| = ${max.toExponential(2)} (logits up to ${scale.toFixed(2)})`,
    );
    // The only difference: activations quantized to Q8_0 / Q8_K for the quantized matvecs, as GGML does.
    assert(max <= 2e-2 * scale, `max |Δ| ${max} > 2% of ${scale}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sensitivity: zero for experts never routed, larger for fewer bits, frequencies sum to top-k", () => {
  using lib = NativeLibrary.open();
  using file = GgufFile.open(Q4KM);
  const tok = tokenizerFromGguf(new Map([...file.metadata].map(([k, v]) => [k, v.value])));
  const ids = tok.encode(
    Deno.readTextFileSync(new URL("fixtures/text/moby_dick_ch1.txt", import.meta.url)).slice(0, 600),
  );
  const w = makeWindows(ids, 32, undefined, 2);
  const s = measureSensitivity(lib, ggufWeights(file), w, { candidates: ["q2_k", "q8_0"] });
  for (let l = 0; l < 2; l++) {
    const sum = s.frequency[l].reduce((a, b) => a + b, 0);
    assert(Math.abs(sum - 2) < 1e-9, `layer ${l} frequencies sum to ${sum}, expected top-k = 2`);
    for (let e = 0; e < 4; e++) {
      if (s.frequency[l][e] === 0) assertEquals(s.kl[l][e], [0, 0]);
      else assert(s.kl[l][e][0] > s.kl[l][e][1], `expert ${l}.${e}: q2_k ${s.kl[l][e][0]} <= q8_0 ${s.kl[l][e][1]}`);
    }
  }
  assertEquals(s.bytes[0][0], [3 * 256 * 84, 3 * 256 * 272]);
  assert(modelLogits(new MoeModel(ggufWeights(file), lib, { nCtx: 8 })).nVocab === 419);
});

Deno.test("typeForRows: K-quants fall back as llama.cpp's quantizer does when rows do not fill 256", () => {
  const name = (t: string, cols: number) => typeForRows(t, cols)?.name;
  assertEquals(name("q4_k", 256), "q4_k");
  assertEquals([name("q2_k", 128), name("q3_k", 128), name("q4_k", 128), name("q5_k", 128), name("q6_k", 96)], [
    "q4_0",
    "q4_0",
    "q5_0",
    "q5_1",
    "q8_0",
  ]);
  assertEquals(name("q8_0", 16), undefined);
  assertThrows(() => typeForRows("q9_z", 256), EdgeMoeError, "unknown type");
});

Deno.test("convert --plan on rows of 64 and 32: experts get the fallback types, llama.cpp parses the pack", async () => {
  using lib = NativeLibrary.open();
  const dir = await Deno.makeTempDir();
  try {
    const out = `${dir}/fallback.pack.gguf`;
    const types = [0, 1].map(() => ["q2_k", "q4_k", "q5_k", "q6_k", "q8_0", "q3_k", "q4_k", "q2_k"]);
    await convertGgufToPack(`${FIXTURE_DIR}qwen3moe.gguf`, out, {
      checksum: (b) => lib.checksum64(b),
      plan: {
        method: "test",
        types,
        transcode: (bytes, from, to, n) =>
          lib.quantize(to as "q4_0", lib.dequantize(ggmlTypeById(from)!.name as "f32", bytes.slice(), n)),
      },
    });
    using pack = PackFile.open(out);
    const want = ["q4_0", "q5_0", "q5_1", "q8_0", "q8_0", "q4_0", "q5_0", "q4_0"];
    for (const b of pack.blobs()) {
      for (const p of ["gate", "up", "down"] as const) assertEquals(b.tensors[p].type.name, want[b.expert]);
    }
    assert(llamaGguf(out) !== null, "llama.cpp's gguf_init_from_file refused the pack");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a mixed pack (experts read from disk) generates what the same per-expert tensors do from a plain GGUF", async () => {
  using lib = NativeLibrary.open();
  const dir = await Deno.makeTempDir();
  try {
    const names = ["q2_k", "q3_k", "q4_k", "q5_k", "q6_k", "q8_0", "q4_0", "q5_1"];
    const pack = `${dir}/mixed.pack.gguf`, plain = `${dir}/plain.gguf`;
    await convertGgufToPack(Q4KM, pack, {
      checksum: (b) => lib.checksum64(b),
      plan: {
        method: "test",
        types: [0, 1].map((l) => [0, 1, 2, 3].map((e) => names[(l * 4 + e + 3) % 8])),
        transcode: (bytes, from, to, n) =>
          lib.quantize(to as "q4_k", lib.dequantize(ggmlTypeById(from)!.name as "q4_k", bytes.slice(), n)),
      },
    });
    {
      // The pack's tensors (experts as blk.L.ffn_{part}.E.weight), without the pack's layout or metadata.
      using f = GgufFile.open(pack);
      const meta = [...f.metadata].filter(([k]) => !k.startsWith("edgemoe.") && k !== "general.alignment");
      await writeGguf(
        plain,
        meta,
        f.tensors.map((t) => ({ name: t.name, type: t.type.id, dims: t.dims, data: f.readTensor(t.name) })),
      );
    }
    const prompt = [287, 32, 113, 117, 396, 294, 114, 111, 119, 110, 326];
    const run = (path: string, store: "pread" | "ram") => {
      using engine = createEngine(path, { lib, store, nCtx: 64, predictor: "none" });
      const logits = Array.from(prompt, (t) => engine.evaluate([t]));
      return { logits, greedy: greedyRun(engine) };
    };
    const a = run(pack, "pread"), b = run(plain, "ram");
    a.logits.forEach((row, i) => assertEquals([...row], [...b.logits[i]], `logits at position ${i}`));
    assertEquals(a.greedy, b.greedy);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** 16 greedy tokens after the current sequence. */
function greedyRun(engine: ReturnType<typeof createEngine>): number[] {
  const out: number[] = [];
  let logits = engine.evaluate([32]);
  for (let i = 0; i < 16; i++) {
    let best = 0;
    for (let j = 1; j < logits.length; j++) if (logits[j] > logits[best]) best = j;
    out.push(best);
    logits = engine.evaluate([best]);
  }
  return out;
}
