/**
 * config.json parsing, the HF → GGUF name table, tokenizer metadata, and the
 * conversion's refusals. Expected names and keys are llama.cpp's (llama-arch.cpp,
 * convert_hf_to_gguf.py); that llama.cpp loads the result is tested in
 * hf_convert_test.ts.
 */
import { EdgeMoeError, type EdgeMoeErrorCode } from "../src/errors.ts";
import { archMetadata, type HfModelConfig, parseHfConfig } from "../src/hf/config.ts";
import { convertHfToGguf } from "../src/hf/convert.ts";
import { planTensors, ropePermutation } from "../src/hf/names.ts";
import { tokenizerMetadata, TokenType } from "../src/hf/tokenizer.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "../src/std/assert.ts";

const FIXTURES = new URL("./fixtures/hf/", import.meta.url).pathname;
const fixtureConfig = (arch: string) => JSON.parse(Deno.readTextFileSync(`${FIXTURES}${arch}/config.json`));

function cfgOf(arch: string, patch: Record<string, unknown> = {}): HfModelConfig {
  return parseHfConfig(JSON.stringify({ ...fixtureConfig(arch), ...patch }));
}

function expectConfigError(arch: string, patch: Record<string, unknown>, code: EdgeMoeErrorCode, includes: string) {
  const e = assertThrows(() => cfgOf(arch, patch), EdgeMoeError, includes);
  assertEquals(e.code, code, e.message);
}

Deno.test("hf config: the fixtures' hyperparameters", () => {
  const q2 = cfgOf("qwen2moe");
  assertEquals([q2.arch, q2.numExperts, q2.numExpertsPerTok, q2.expertFfnSize, q2.sharedExpertFfnSize], [
    "qwen2moe",
    4,
    2,
    32,
    48,
  ]);
  assertEquals(q2.normTopkProb, false);
  const q3 = cfgOf("qwen3moe");
  assertEquals([q3.arch, q3.headDim, q3.headDimExplicit, q3.normTopkProb], ["qwen3moe", 16, true, true]);
  const mx = cfgOf("mixtral");
  assertEquals([mx.arch, mx.numKvHeads, mx.expertFfnSize, mx.ropeTheta, mx.bosTokenId], ["llama", 2, 32, 1e6, 1]);
  const ol = cfgOf("olmoe");
  assertEquals([ol.arch, ol.expertFfnSize, ol.normTopkProb], ["olmoe", 32, false]);
});

Deno.test("hf config: refusals", async (t) => {
  await t.step("unsupported architecture lists the supported ones", () => {
    expectConfigError(
      "qwen2moe",
      { architectures: ["LlamaForCausalLM"] },
      "unsupported",
      'architecture "LlamaForCausalLM" is not supported; supported: MixtralForCausalLM, Qwen2MoeForCausalLM, Qwen3MoeForCausalLM, OlmoeForCausalLM',
    );
  });
  await t.step(
    "no architectures",
    () => expectConfigError("olmoe", { architectures: [] }, "unsupported", "must name one"),
  );
  await t.step(
    "missing field",
    () => expectConfigError("olmoe", { hidden_size: undefined }, "corrupt_data", 'missing "hidden_size"'),
  );
  await t.step("ill-typed field", () => {
    expectConfigError("olmoe", { num_hidden_layers: "2" }, "corrupt_data", '"num_hidden_layers" must be an integer');
  });
  await t.step(
    "zero layers",
    () => expectConfigError("olmoe", { num_hidden_layers: 0 }, "corrupt_data", "expected at least 1"),
  );
  await t.step("a vocabulary past the cap", () => {
    expectConfigError(
      "olmoe",
      { vocab_size: 2 ** 40 },
      "corrupt_data",
      '"vocab_size" = 1099511627776, more than the limit',
    );
  });
  await t.step("heads not a multiple of kv heads", () => {
    expectConfigError("qwen2moe", { num_key_value_heads: 3 }, "corrupt_data", "not a multiple of num_key_value_heads");
  });
  await t.step("top-k above the expert count", () => {
    expectConfigError("qwen3moe", { num_experts_per_tok: 9 }, "corrupt_data", "exceeds the 4 experts");
  });
  await t.step("renormalisation llama.cpp does not do", () => {
    expectConfigError("qwen2moe", { norm_topk_prob: true }, "unsupported", "llama.cpp's qwen2moe graph assumes false");
  });
  await t.step("rope scaling", () => {
    expectConfigError("qwen3moe", { rope_scaling: { type: "yarn", factor: 4 } }, "unsupported", "rope scaling");
  });
  await t.step("dense layers", () => {
    expectConfigError("qwen3moe", { mlp_only_layers: [0] }, "unsupported", "dense (non-MoE) layers");
  });
  await t.step("OLMoE with grouped-query attention", () => {
    expectConfigError("olmoe", { num_key_value_heads: 2 }, "unsupported", "grouped-query attention");
  });
  await t.step("not JSON", () => {
    assertEquals(assertThrows(() => parseHfConfig("{"), EdgeMoeError).code, "corrupt_data");
  });
});

Deno.test("hf config: GGUF metadata keys per architecture", () => {
  const keys = (arch: string) => new Map(archMetadata(cfgOf(arch)).map(([k, v]) => [k, v.value]));
  const mx = keys("mixtral");
  assertEquals(mx.get("general.architecture"), "llama");
  assertEquals(mx.get("llama.rope.dimension_count"), 16);
  assertEquals(mx.get("llama.vocab_size"), cfgOf("mixtral").vocabSize);
  assertEquals(mx.get("llama.expert_count"), 4);
  assertEquals(mx.get("llama.feed_forward_length"), 32);
  const q2 = keys("qwen2moe");
  assertEquals(q2.get("qwen2moe.expert_feed_forward_length"), 32);
  assertEquals(q2.get("qwen2moe.expert_shared_feed_forward_length"), 48);
  assertEquals(q2.has("qwen2moe.attention.key_length"), false);
  const q3 = keys("qwen3moe");
  assertEquals(q3.get("qwen3moe.attention.key_length"), 16);
  assertEquals(q3.get("qwen3moe.expert_used_count"), 2);
  const ol = keys("olmoe");
  assertAlmost(ol.get("olmoe.attention.layer_norm_rms_epsilon") as number, 1e-5);
  assertEquals(ol.get("olmoe.block_count"), 2);
});

function assertAlmost(a: number, b: number) {
  assert(Math.abs(a - b) <= 1e-12, `${a} != ${b}`);
}

Deno.test("hf names: layer 0 of each architecture maps to llama.cpp's names", () => {
  const layer0 = (arch: string) =>
    Object.fromEntries(
      planTensors(cfgOf(arch), () => true).filter((p) => p.name.startsWith("blk.0.")).map((p) => [
        p.name,
        p.sources.length === 1 ? p.sources[0] : `${p.sources[0]} … ${p.sources.length}`,
      ]),
    );
  const attn = (extra: Record<string, string> = {}) => ({
    "blk.0.attn_norm.weight": "model.layers.0.input_layernorm.weight",
    "blk.0.attn_q.weight": "model.layers.0.self_attn.q_proj.weight",
    "blk.0.attn_k.weight": "model.layers.0.self_attn.k_proj.weight",
    "blk.0.attn_v.weight": "model.layers.0.self_attn.v_proj.weight",
    "blk.0.attn_output.weight": "model.layers.0.self_attn.o_proj.weight",
    "blk.0.ffn_norm.weight": "model.layers.0.post_attention_layernorm.weight",
    ...extra,
  });
  const moe = (p: string, g: string, u: string, d: string) => ({
    "blk.0.ffn_gate_inp.weight": `${p}.gate.weight`,
    "blk.0.ffn_gate_exps.weight": `${p}.experts.0.${g}.weight … 4`,
    "blk.0.ffn_up_exps.weight": `${p}.experts.0.${u}.weight … 4`,
    "blk.0.ffn_down_exps.weight": `${p}.experts.0.${d}.weight … 4`,
  });
  const mlp = "model.layers.0.mlp";
  assertEquals(layer0("mixtral"), { ...attn(), ...moe("model.layers.0.block_sparse_moe", "w1", "w3", "w2") });
  assertEquals(layer0("qwen2moe"), {
    ...attn({
      "blk.0.attn_q.bias": "model.layers.0.self_attn.q_proj.bias",
      "blk.0.attn_k.bias": "model.layers.0.self_attn.k_proj.bias",
      "blk.0.attn_v.bias": "model.layers.0.self_attn.v_proj.bias",
    }),
    ...moe(mlp, "gate_proj", "up_proj", "down_proj"),
    "blk.0.ffn_gate_inp_shexp.weight": `${mlp}.shared_expert_gate.weight`,
    "blk.0.ffn_gate_shexp.weight": `${mlp}.shared_expert.gate_proj.weight`,
    "blk.0.ffn_up_shexp.weight": `${mlp}.shared_expert.up_proj.weight`,
    "blk.0.ffn_down_shexp.weight": `${mlp}.shared_expert.down_proj.weight`,
  });
  const qk = {
    "blk.0.attn_q_norm.weight": "model.layers.0.self_attn.q_norm.weight",
    "blk.0.attn_k_norm.weight": "model.layers.0.self_attn.k_norm.weight",
  };
  assertEquals(layer0("qwen3moe"), { ...attn(qk), ...moe(mlp, "gate_proj", "up_proj", "down_proj") });
  assertEquals(layer0("olmoe"), { ...attn(qk), ...moe(mlp, "gate_proj", "up_proj", "down_proj") });
  const olmoe = planTensors(cfgOf("olmoe"), () => true);
  assertEquals(olmoe.find((p) => p.name === "blk.0.attn_q_norm.weight")!.sourceShape, [64]);
  const q3 = planTensors(cfgOf("qwen3moe"), () => true);
  assertEquals(q3.find((p) => p.name === "blk.0.attn_k_norm.weight")!.sourceShape, [16]);
});

Deno.test("hf names: only Mixtral's Q and K are permuted, by their own head counts", () => {
  const perm = (arch: string) =>
    planTensors(cfgOf(arch), () => true).filter((p) => p.permuteHeads !== undefined).map((p) => [
      p.name,
      p.permuteHeads,
    ]);
  assertEquals(perm("mixtral").slice(0, 2), [["blk.0.attn_q.weight", 4], ["blk.0.attn_k.weight", 2]]);
  assertEquals(perm("qwen3moe"), []);
  assertEquals(perm("olmoe"), []);
});

Deno.test("hf names: the RoPE permutation interleaves the two halves of each head", () => {
  // numpy: w.reshape(heads, 2, hd // 2, -1).swapaxes(1, 2).reshape(w.shape) on rows 0..7, 2 heads of 4
  assertEquals(Array.from(ropePermutation(8, 2)), [0, 2, 1, 3, 4, 6, 5, 7]);
  assertEquals(Array.from(ropePermutation(6, 1)), [0, 3, 1, 4, 2, 5]);
});

Deno.test("hf names: tied embeddings drop output.weight only when lm_head is absent", () => {
  const cfg = cfgOf("qwen3moe", { tie_word_embeddings: true });
  assertEquals(planTensors(cfg, () => false).some((p) => p.name === "output.weight"), false);
  assertEquals(planTensors(cfg, () => true).some((p) => p.name === "output.weight"), true);
  assertEquals(planTensors(cfgOf("qwen3moe"), () => false).some((p) => p.name === "output.weight"), true);
});

// ---- tokenizer metadata ----

function tok(patch: (tj: Record<string, unknown>) => void, tc?: Record<string, unknown>, arch = "qwen3moe") {
  const tj = JSON.parse(Deno.readTextFileSync(`${FIXTURES}${arch}/tokenizer.json`));
  patch(tj);
  const tcText = tc === undefined
    ? Deno.readTextFileSync(`${FIXTURES}${arch}/tokenizer_config.json`)
    : JSON.stringify(tc);
  return new Map(tokenizerMetadata(cfgOf(arch), JSON.stringify(tj), tcText, "dir").map(([k, v]) => [k, v.value]));
}

Deno.test("hf tokenizer: byte-level BPE metadata", () => {
  const m = tok(() => {});
  const cfg = cfgOf("qwen3moe");
  const tokens = m.get("tokenizer.ggml.tokens") as string[];
  const types = m.get("tokenizer.ggml.token_type") as Int32Array;
  assertEquals(m.get("tokenizer.ggml.model"), "gpt2");
  assertEquals(m.get("tokenizer.ggml.pre"), "qwen2");
  assertEquals(tokens.length, cfg.vocabSize);
  const eot = tokens.indexOf("<|endoftext|>");
  assertEquals(types[eot], TokenType.CONTROL);
  assertEquals(m.get("tokenizer.ggml.eos_token_id"), eot);
  assertEquals(m.get("tokenizer.ggml.padding_token_id"), eot);
  assertEquals(tokens[cfg.vocabSize - 1], `[PAD${cfg.vocabSize - 1}]`);
  assertEquals(types[cfg.vocabSize - 1], TokenType.UNUSED);
  assertEquals(types[100], TokenType.NORMAL);
  const merges = m.get("tokenizer.ggml.merges") as string[];
  assert(merges.length > 0 && merges.every((s) => s.split(" ").length === 2), "merges are 'a b' strings");
  assert((m.get("tokenizer.chat_template") as string).includes("messages"));
  assertEquals(m.has("tokenizer.ggml.scores"), false);
});

Deno.test("hf tokenizer: SentencePiece-style metadata for Mixtral", () => {
  const m = tok(() => {}, undefined, "mixtral");
  const types = m.get("tokenizer.ggml.token_type") as Int32Array;
  const scores = m.get("tokenizer.ggml.scores") as Float32Array;
  assertEquals(m.get("tokenizer.ggml.model"), "llama");
  assertEquals([types[0], types[1], types[2], types[3], types[3 + 255]], [
    TokenType.UNKNOWN,
    TokenType.CONTROL,
    TokenType.CONTROL,
    TokenType.BYTE,
    TokenType.BYTE,
  ]);
  assertEquals([m.get("tokenizer.ggml.bos_token_id"), m.get("tokenizer.ggml.eos_token_id")], [1, 2]);
  assertEquals(m.get("tokenizer.ggml.add_bos_token"), true);
  assert(scores[300] > scores[301], "lower ids score higher (SentencePiece order)");
  assertEquals(m.has("tokenizer.ggml.merges"), false);
});

Deno.test("hf tokenizer: refusals", async (t) => {
  const expect = (fn: () => unknown, code: EdgeMoeErrorCode, includes: string) => {
    const e = assertThrows(fn, EdgeMoeError, includes);
    assertEquals(e.code, code, e.message);
  };
  await t.step("a WordPiece model", () => {
    expect(() => tok((tj) => (tj.model as Record<string, unknown>).type = "WordPiece"), "unsupported", "only BPE");
  });
  await t.step("a SentencePiece-style tokenizer for a byte-level architecture", () => {
    const tj = Deno.readTextFileSync(`${FIXTURES}mixtral/tokenizer.json`);
    expect(() => tokenizerMetadata(cfgOf("qwen3moe"), tj, undefined, "dir"), "unsupported", "needs a byte-level BPE");
  });
  await t.step("more tokens than vocab_size", () => {
    const tj = Deno.readTextFileSync(`${FIXTURES}qwen3moe/tokenizer.json`);
    expect(
      () => tokenizerMetadata(cfgOf("qwen3moe", { vocab_size: 100 }), tj, undefined, "dir"),
      "corrupt_data",
      "more than config.json's vocab_size 100",
    );
  });
  await t.step("a gap in the ids", () => {
    expect(
      () => tok((tj) => ((tj.model as Record<string, unknown>).vocab as Record<string, number>)["zzz"] = 100000),
      "corrupt_data",
      "no token has id",
    );
  });
  await t.step("two tokens with one id", () => {
    expect(
      () => tok((tj) => ((tj.model as Record<string, unknown>).vocab as Record<string, number>)["zzz"] = 5),
      "corrupt_data",
      "id 5 is both",
    );
  });
  await t.step("a negative added-token id", () => {
    expect(() => tok((tj) => (tj.added_tokens as { id: number }[])[0].id = -1), "corrupt_data", "has id -1");
  });
  await t.step("a malformed merge", () => {
    expect(() => tok((tj) => (tj.model as Record<string, unknown>).merges = [["a"]]), "corrupt_data", "merges[0]");
  });
  await t.step("a duplicate key in the vocab", () => {
    const tj = Deno.readTextFileSync(`${FIXTURES}qwen3moe/tokenizer.json`).replace('"vocab": {', '"vocab": {"a": 97,');
    expect(() => tokenizerMetadata(cfgOf("qwen3moe"), tj, undefined, "dir"), "corrupt_data", "duplicate key");
  });
});

// ---- conversion refusals ----

function copyFixture(arch: string): string {
  const dir = Deno.makeTempDirSync({ prefix: `edgemoe-hf-bad-${arch}-` });
  for (const e of Deno.readDirSync(`${FIXTURES}${arch}`)) {
    Deno.copyFileSync(`${FIXTURES}${arch}/${e.name}`, `${dir}/${e.name}`);
  }
  return dir;
}

async function expectConvertError(dir: string, code: EdgeMoeErrorCode, includes: string) {
  const out = `${dir}/out.gguf`;
  const e = await assertRejects(() => convertHfToGguf(dir, out), EdgeMoeError, includes);
  assertEquals(e.code, code, e.message);
  const left = [...Deno.readDirSync(dir)].map((x) => x.name).filter((n) => n.startsWith("out.gguf"));
  assertEquals(left, [], "no output and no .partial file is left");
}

function patchConfig(dir: string, patch: Record<string, unknown>) {
  const cfg = JSON.parse(Deno.readTextFileSync(`${dir}/config.json`));
  Deno.writeTextFileSync(`${dir}/config.json`, JSON.stringify({ ...cfg, ...patch }));
}

Deno.test("hf convert: refusals leave no output", async (t) => {
  await t.step("a shape that disagrees with config.json", async () => {
    const dir = copyFixture("olmoe");
    patchConfig(dir, { intermediate_size: 16 });
    await expectConvertError(dir, "corrupt_data", "expected [16, 64] from config.json");
  });
  await t.step("a tensor the config does not explain", async () => {
    const dir = copyFixture("olmoe");
    patchConfig(dir, { num_hidden_layers: 1 });
    await expectConvertError(dir, "corrupt_data", "unexpected tensor model.layers.1.");
  });
  await t.step("a missing tensor", async () => {
    const dir = copyFixture("mixtral");
    patchConfig(dir, { num_hidden_layers: 3 });
    await expectConvertError(dir, "corrupt_data", "missing tensor model.layers.2.input_layernorm.weight");
  });
  await t.step("an integer tensor", async () => {
    const dir = copyFixture("olmoe");
    const path = `${dir}/model.safetensors`;
    const bytes = Deno.readFileSync(path);
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    const header = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    const name = "model.norm.weight";
    const at = header.indexOf(`"${name}":{"dtype":"BF16"`);
    assert(at >= 0);
    const patched = header.replace(`"${name}":{"dtype":"BF16"`, `"${name}":{"dtype":"I16" `);
    assertEquals(patched.length, header.length);
    bytes.set(new TextEncoder().encode(patched), 8);
    Deno.writeFileSync(path, bytes);
    await expectConvertError(dir, "unsupported", `tensor ${name} is I16; only F32, F16 and BF16 are converted`);
  });
  await t.step("no tokenizer.json", async () => {
    const dir = copyFixture("qwen2moe");
    Deno.removeSync(`${dir}/tokenizer.json`);
    await expectConvertError(dir, "io", "tokenizer.json");
  });
  await t.step("no config.json", async () => {
    const dir = copyFixture("qwen2moe");
    Deno.removeSync(`${dir}/config.json`);
    await expectConvertError(dir, "io", "config.json");
  });
  await t.step("a shard missing from a sharded model", async () => {
    const dir = copyFixture("qwen3moe");
    Deno.removeSync(`${dir}/model-00002-of-00002.safetensors`);
    await expectConvertError(dir, "io", 'shard "model-00002-of-00002.safetensors" named by the index is missing');
  });
});
