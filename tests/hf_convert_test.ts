/**
 * Hugging Face directory → GGUF, checked against trusted references: the tiny
 * models of tests/fixtures/hf (written by tools/fixtures/make_hf_models.py with
 * the `safetensors` and `tokenizers` libraries) are converted, loaded in
 * llama.cpp, and their logits and tokenizations compared with the references
 * the generator computed: Hugging Face transformers' logits (Mixtral, Qwen2-MoE,
 * OLMoE; Qwen3-MoE from a numpy implementation that matches transformers on
 * the other three, see the generator) and the `tokenizers` library's ids.
 */
import { NativeLibrary } from "../mod.ts";
import { createEngine } from "../src/engine.ts";
import { EdgeMoeError } from "../src/errors.ts";
import { GgufFile } from "../src/gguf/reader.ts";
import { convertHfToGguf } from "../src/hf/convert.ts";
import { convertGgufToPack } from "../src/pack/mod.ts";
import { SafetensorsModel } from "../src/safetensors/model.ts";
import { assert, assertEquals, assertRejects } from "../src/std/assert.ts";
import { LlamaModel } from "./oracle/llama.ts";

const FIXTURES = new URL("./fixtures/hf/", import.meta.url).pathname;
const ARCHS = ["mixtral", "qwen2moe", "qwen3moe", "olmoe"] as const;

interface Reference {
  ids: number[];
  logits: number[][];
  tokens: Record<string, number[]>;
  tensors: Record<string, [number[], number]>;
}

function reference(arch: string): Reference {
  return JSON.parse(Deno.readTextFileSync(`${FIXTURES}${arch}/reference.json`));
}

async function convert(arch: string): Promise<string> {
  const out = `${Deno.makeTempDirSync({ prefix: `edgemoe-hf-${arch}-` })}/model.gguf`;
  await convertHfToGguf(`${FIXTURES}${arch}`, out);
  return out;
}

for (const arch of ARCHS) {
  Deno.test(`hf ${arch}: the safetensors reader returns what the safetensors library was given`, () => {
    const ref = reference(arch);
    using m = SafetensorsModel.open(`${FIXTURES}${arch}`);
    assertEquals([...m.tensors.keys()].sort(), Object.keys(ref.tensors).sort());
    for (const [name, [shape, bitSum]] of Object.entries(ref.tensors)) {
      const t = m.get(name)!;
      assertEquals(t.shape, shape, name);
      const bytes = m.read(name);
      const words = t.byteLength / t.elements === 2 ? new Uint16Array(bytes.buffer) : new Uint32Array(bytes.buffer);
      let sum = 0;
      for (const w of words) sum += w;
      assertEquals(sum, bitSum, `bit sum of ${name}`);
    }
  });

  Deno.test(`hf ${arch}: converted GGUF loads in llama.cpp and its logits match the reference`, async () => {
    const ref = reference(arch);
    const out = await convert(arch);
    using llama = LlamaModel.load(out, { threads: 1 });
    const rows = llama.evaluate(ref.ids);
    let maxDiff = 0, maxRef = 0;
    for (const [t, row] of rows.entries()) {
      assertEquals(row.length, ref.logits[t].length);
      for (let i = 0; i < row.length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(row[i] - ref.logits[t][i]));
        maxRef = Math.max(maxRef, Math.abs(ref.logits[t][i]));
      }
    }
    // qwen3moe is F32; the others are F16/BF16, whose matmuls llama.cpp runs on rounded activations. A wrong
    // permutation, expert order or norm gives differences of the order of the logits.
    const tol = (arch === "qwen3moe" ? 1e-4 : 2e-2) * maxRef;
    assert(maxDiff <= tol, `${arch}: max |logit diff| ${maxDiff} > ${tol} (max |logit| ${maxRef})`);
  });

  Deno.test(`hf ${arch}: llama.cpp tokenizes like the tokenizers library`, async () => {
    const ref = reference(arch);
    const out = await convert(arch);
    using llama = LlamaModel.load(out, { threads: 1 });
    for (const [text, ids] of Object.entries(ref.tokens)) {
      assertEquals(Array.from(llama.tokenize(text, { addSpecial: false, parseSpecial: false })), ids, text);
    }
  });
}

Deno.test("hf convert: the GGUF reader reads back names, dims, types, stacked experts and permuted Q", async () => {
  const out = await convert("mixtral");
  using g = GgufFile.open(out);
  using m = SafetensorsModel.open(`${FIXTURES}mixtral`);
  assertEquals(g.getString("general.architecture"), "llama");
  assertEquals(g.getU32("llama.expert_count"), 4);
  assertEquals(g.getU32("llama.expert_used_count"), 2);
  assertEquals(g.getU32("llama.block_count"), 2);
  assertEquals(g.getU32("llama.rope.dimension_count"), 16);
  assertEquals(g.getString("tokenizer.ggml.model"), "llama");
  const byName = new Map(g.tensors.map((t) => [t.name, t]));
  const gate = byName.get("blk.1.ffn_gate_exps.weight")!;
  assertEquals(gate.dims, [64, 32, 4]);
  assertEquals(gate.type.name, "bf16");
  assertEquals(byName.get("blk.1.ffn_down_exps.weight")!.dims, [32, 64, 4]);
  assertEquals(byName.get("blk.0.attn_norm.weight")!.type.name, "f32");
  assertEquals(byName.get("blk.0.ffn_gate_inp.weight")!.type.name, "f32");
  const read = (name: string) => g.readTensor(name);
  const stacked = read("blk.1.ffn_up_exps.weight");
  const e2 = m.read("model.layers.1.block_sparse_moe.experts.2.w3.weight");
  assertEquals(stacked.subarray(2 * e2.length, 3 * e2.length), e2);
  // Q rows of head 0 (head_dim 16): output row 1 is source row 8 (the first y of the rotary pair).
  const q = read("blk.0.attn_q.weight");
  const src = m.read("model.layers.0.self_attn.q_proj.weight");
  const row = 64 * 2;
  assertEquals(q.subarray(row, 2 * row), src.subarray(8 * row, 9 * row));
  assertEquals(q.subarray(2 * row, 3 * row), src.subarray(1 * row, 2 * row));
  // The norms were BF16 and are stored as exact F32.
  const norm = new Float32Array(read("blk.0.attn_norm.weight").slice().buffer);
  const bf = new Uint16Array(m.read("model.layers.0.input_layernorm.weight").buffer);
  assertEquals(new Uint32Array(norm.buffer)[5], bf[5] << 16);
  assertEquals(g.tensors.length, 1 + 2 * 10 + 2);
});

Deno.test("hf convert: an existing output is kept unless overwrite is given", async () => {
  const dir = Deno.makeTempDirSync();
  const out = `${dir}/m.gguf`;
  Deno.writeTextFileSync(out, "keep me");
  const e = await assertRejects(() => convertHfToGguf(`${FIXTURES}olmoe`, out), EdgeMoeError, "exists");
  assertEquals(e.code, "invalid_argument");
  assertEquals(Deno.readTextFileSync(out), "keep me");
  await convertHfToGguf(`${FIXTURES}olmoe`, out, { overwrite: true });
  using g = GgufFile.open(out);
  assertEquals(g.getString("general.architecture"), "olmoe");
});

// F32 (qwen3moe), F16 (qwen2moe) and BF16 (mixtral, olmoe) weights.
for (const arch of ARCHS) {
  Deno.test(`hf ${arch} → pack → engine: the same greedy tokens as llama.cpp on the converted GGUF`, async () => {
    const ref = reference(arch);
    const gguf = await convert(arch);
    const pack = gguf.replace(/\.gguf$/, ".pack.gguf");
    using lib = NativeLibrary.open();
    await convertGgufToPack(gguf, pack, { checksum: (b) => lib.checksum64(b) });
    using llama = LlamaModel.load(gguf, { threads: 1 });
    const want = Array.from(llama.greedy(ref.ids, 12));
    using engine = createEngine(pack, { lib, store: "pread" });
    const got = [...engine.generateSync(ref.ids, { maxTokens: 12, stopAtEog: false })].map((t) => t.id).filter((id) =>
      id >= 0
    );
    assertEquals(got, want);
  });
}
