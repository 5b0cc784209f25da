/**
 * The bundled demo model (models/demo/, trained by tools/train/) and its engine fixtures
 * (tests/fixtures/demo/, written by tools/train/verify_llama.ts with llama.cpp): the fixtures belong to
 * the committed file, llama.cpp still computes them from it, and the file is the architecture the model
 * card states.
 */
import { GgufFile } from "../src/gguf/mod.ts";
import { assert, assertEquals } from "../src/std/assert.ts";
import { LlamaModel } from "./oracle/llama.ts";
import { compareLogits, sha256File } from "./oracle/reference.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const FIXTURES = `${ROOT}tests/fixtures/demo/`;

interface DemoFixtures {
  model: string;
  ggufSha256: string;
  n_vocab: number;
  prompts: { prompt: string; prompt_ids: number[]; last_logits_file: string; greedy_ids: number[] }[];
}

const fixtures: DemoFixtures = JSON.parse(Deno.readTextFileSync(`${FIXTURES}greedy.json`));
const modelPath = `${ROOT}${fixtures.model}`;

Deno.test("the demo fixtures were made from the committed demo model", async () => {
  assertEquals(await sha256File(modelPath), fixtures.ggufSha256);
});

Deno.test("the demo model is a qwen3moe with 16 experts, top-2, 4 layers, a 4096-token BPE, under 20 MB", () => {
  using f = GgufFile.open(modelPath);
  assertEquals(f.getString("general.architecture"), "qwen3moe");
  assertEquals(f.getInt("qwen3moe.expert_count"), 16);
  assertEquals(f.getInt("qwen3moe.expert_used_count"), 2);
  assertEquals(f.getInt("qwen3moe.block_count"), 4);
  assertEquals(f.getInt("qwen3moe.embedding_length") % 256, 0);
  assertEquals(f.getString("tokenizer.ggml.model"), "gpt2");
  assertEquals(f.getString("tokenizer.ggml.pre"), "qwen2");
  assertEquals(f.getStringArray("tokenizer.ggml.tokens").length, fixtures.n_vocab);
  assert(f.size < 20 * 1024 * 1024, `${f.size} bytes`);
});

Deno.test("llama.cpp reproduces the demo fixtures: prompt ids, last-position logits, 32 greedy tokens", () => {
  using m = LlamaModel.load(modelPath, { threads: 1, nCtx: 256 });
  assertEquals(m.nVocab, fixtures.n_vocab);
  for (const p of fixtures.prompts) {
    assertEquals(Array.from(m.tokenize(p.prompt, { addSpecial: false })), p.prompt_ids, p.prompt);
    const raw = Deno.readFileSync(`${FIXTURES}${p.last_logits_file}`);
    const want = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
    const rows = m.evaluate(p.prompt_ids);
    const cmp = compareLogits([rows[rows.length - 1]], [want]);
    assert(cmp.maxAbsDiff <= 1e-5, `${p.prompt}: max |Δlogit| ${cmp.maxAbsDiff}`);
    assertEquals(Array.from(m.greedy(p.prompt_ids, p.greedy_ids.length)), p.greedy_ids, p.prompt);
  }
});
