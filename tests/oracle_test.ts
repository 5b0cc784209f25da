/**
 * The llama.cpp oracle (tests/oracle/llama.ts) and the committed references
 * of the tiny MoE fixtures (tests/fixtures/models/). The struct offsets are
 * checked against the defaults llama.cpp itself writes (values from
 * llama_context_default_params / llama_model_default_params /
 * llama_model_quantize_default_params in llama.cpp
 * v0.5.0) and against what it reads back; the references against a fresh run.
 */
import { EdgeMoeError } from "../src/errors.ts";
import { assert, assertEquals, assertThrows } from "../src/std/assert.ts";
import { computeReference } from "../tools/fixtures/make_reference_logits.ts";
import {
  CONTEXT_PARAMS,
  defaultParams,
  llamaLog,
  llamaLogMark,
  LlamaModel,
  MODEL_PARAMS,
  QUANTIZE_PARAMS,
  quantizeModel,
} from "./oracle/llama.ts";
import { argmaxOf, compareLogits, FIXTURE_DIR, FIXTURES, maxAbsDiff, readReference } from "./oracle/reference.ts";

type Field = [offset: number, kind: "i32" | "u32" | "f32" | "u8" | "u64", expected: number];

/** Every field of llama_context_params (llama.h, v0.5.0) with the default llama.cpp fills in. */
const CONTEXT_DEFAULTS: Record<string, Field> = {
  n_ctx: [0, "u32", 512],
  n_batch: [4, "u32", 2048],
  n_ubatch: [8, "u32", 512],
  n_seq_max: [12, "u32", 1],
  n_rs_seq: [16, "u32", 0],
  n_outputs_max: [20, "u32", 0],
  n_outputs_max_per_seq: [24, "u32", 1],
  n_threads: [28, "i32", 4],
  n_threads_batch: [32, "i32", 4],
  ctx_type: [36, "i32", 0],
  rope_scaling_type: [40, "i32", -1],
  pooling_type: [44, "i32", -1],
  attention_type: [48, "i32", -1],
  flash_attn_type: [52, "i32", -1],
  rope_freq_base: [56, "f32", 0],
  rope_freq_scale: [60, "f32", 0],
  yarn_ext_factor: [64, "f32", -1],
  yarn_attn_factor: [68, "f32", -1],
  yarn_beta_fast: [72, "f32", -1],
  yarn_beta_slow: [76, "f32", -1],
  yarn_orig_ctx: [80, "u32", 0],
  defrag_thold: [84, "f32", -1],
  cb_eval: [88, "u64", 0],
  cb_eval_user_data: [96, "u64", 0],
  type_k: [104, "i32", 1],
  type_v: [108, "i32", 1],
  abort_callback: [112, "u64", 0],
  abort_callback_data: [120, "u64", 0],
  embeddings: [128, "u8", 0],
  offload_kqv: [129, "u8", 1],
  no_perf: [130, "u8", 1],
  op_offload: [131, "u8", 1],
  swa_full: [132, "u8", 1],
  kv_unified: [133, "u8", 0],
  samplers: [136, "u64", 0],
  n_samplers: [144, "u64", 0],
  ctx_other: [152, "u64", 0],
};

/** Every field of llama_model_params (llama.h, v0.5.0) with its default. */
const MODEL_DEFAULTS: Record<string, Field> = {
  devices: [0, "u64", 0],
  tensor_buft_overrides: [8, "u64", 0],
  n_gpu_layers: [16, "i32", -1],
  split_mode: [20, "i32", 1],
  load_mode: [24, "i32", -1],
  lazy_mode: [28, "i32", 1],
  main_gpu: [32, "i32", 0],
  tensor_split: [40, "u64", 0],
  progress_callback: [48, "u64", 0],
  progress_callback_user_data: [56, "u64", 0],
  kv_overrides: [64, "u64", 0],
  vocab_only: [72, "u8", 0],
  check_tensors: [73, "u8", 0],
  use_extra_bufts: [74, "u8", 1],
  no_host: [75, "u8", 0],
  no_alloc: [76, "u8", 0],
  load_mtp: [77, "u8", 0],
};

/** Every field of llama_model_quantize_params (llama.h, v0.5.0) with its default. */
const QUANTIZE_DEFAULTS: Record<string, Field> = {
  nthread: [0, "i32", 0],
  ftype: [4, "i32", 7],
  output_tensor_type: [8, "i32", 43],
  token_embedding_type: [12, "i32", 43],
  allow_requantize: [16, "u8", 0],
  quantize_output_tensor: [17, "u8", 1],
  only_copy: [18, "u8", 0],
  pure: [19, "u8", 0],
  keep_split: [20, "u8", 0],
  dry_run: [21, "u8", 0],
  imatrix: [24, "u64", 0],
  kv_overrides: [32, "u64", 0],
  tt_overrides: [40, "u64", 0],
  prune_layers: [48, "u64", 0],
  max_buf_size: [56, "u64", 8 * 1024 * 1024 * 1024],
};

function read(bytes: Uint8Array, [offset, kind]: Field): number {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (kind) {
    case "i32":
      return v.getInt32(offset, true);
    case "u32":
      return v.getUint32(offset, true);
    case "f32":
      return v.getFloat32(offset, true);
    case "u8":
      return v.getUint8(offset);
    case "u64":
      return Number(v.getBigUint64(offset, true));
  }
}

const path = (name: string) => `${FIXTURE_DIR}${name}.gguf`;

/** What make_tiny_moe.py wrote: [n_embd, n_layer, n_head, n_head_kv, vocab type (1 SPM, 2 BPE), experts, file type]. */
const SHAPES: Record<string, [number, number, number, number, number, string, string]> = {
  "qwen3moe": [64, 2, 4, 2, 2, "8", "all F32"],
  "qwen3moe-f16": [64, 2, 4, 2, 2, "8", "F16"],
  "qwen3moe-q8_0": [64, 2, 4, 2, 2, "8", "Q8_0"],
  "qwen3moe-q4_k_m": [256, 2, 4, 2, 2, "4", "Q4_K - Medium"],
  "qwen2moe": [64, 2, 4, 2, 2, "8", "all F32"],
  "olmoe": [64, 2, 4, 4, 2, "8", "all F32"],
  "mixtral": [64, 2, 4, 2, 1, "8", "all F32"],
  "qwen2moe-q8_0": [64, 2, 4, 2, 2, "8", "Q8_0"],
  "qwen2moe-q4_k_m": [256, 2, 4, 2, 2, "4", "Q4_K - Medium"],
  "olmoe-q8_0": [64, 2, 4, 4, 2, "8", "Q8_0"],
  "olmoe-q4_k_m": [256, 2, 4, 4, 2, "4", "Q4_K - Medium"],
  "mixtral-q8_0": [64, 2, 4, 2, 1, "8", "Q8_0"],
  "mixtral-q4_k_m": [256, 2, 4, 2, 1, "4", "Q4_K - Medium"],
};

Deno.test("llama.cpp's default params sit at the offsets of llama.h", () => {
  const { model, context, quantize } = defaultParams();
  for (const [name, field] of Object.entries(CONTEXT_DEFAULTS)) {
    assertEquals(read(context, field), field[2], `llama_context_params.${name} at byte ${field[0]}`);
  }
  for (const [name, field] of Object.entries(MODEL_DEFAULTS)) {
    assertEquals(read(model, field), field[2], `llama_model_params.${name} at byte ${field[0]}`);
  }
  for (const [name, field] of Object.entries(QUANTIZE_DEFAULTS)) {
    assertEquals(read(quantize, field), field[2], `llama_model_quantize_params.${name} at byte ${field[0]}`);
  }
  for (const [name, off] of Object.entries(QUANTIZE_PARAMS)) {
    if (name !== "size") assertEquals(QUANTIZE_DEFAULTS[name][0], off, `QUANTIZE_PARAMS.${name}`);
  }
  for (const [name, off] of Object.entries(CONTEXT_PARAMS)) {
    if (name !== "size") assertEquals(CONTEXT_DEFAULTS[name][0], off, `CONTEXT_PARAMS.${name}`);
  }
  for (const [name, off] of Object.entries(MODEL_PARAMS)) {
    if (name !== "size") assertEquals(MODEL_DEFAULTS[name][0], off, `MODEL_PARAMS.${name}`);
  }
});

Deno.test("patched context params reach llama.cpp: n_ctx, batch, threads, flash attention, KV type", () => {
  const from = llamaLogMark();
  {
    using m = LlamaModel.load(path("qwen3moe"), { nCtx: 512, threads: 2 });
    const info = m.info();
    assertEquals([m.nCtx, info.nBatch, info.nUbatch, info.threads, info.threadsBatch], [512, 512, 512, 2, 2]);
  }
  let log = llamaLog(from).join("\n");
  assert(/flash_attn\s+= disabled/.test(log), log);
  assert(/K \(f32\).*V \(f32\)/.test(log), log);

  const from2 = llamaLogMark();
  {
    using m = LlamaModel.load(path("qwen3moe"), { nCtx: 300, threads: 1, kvType: 1, flashAttn: -1 });
    assertEquals([m.nCtx, m.info().threads], [512, 1]);
  }
  log = llamaLog(from2).join("\n");
  assert(/flash_attn\s+= auto/.test(log), log);
  assert(/K \(f16\).*V \(f16\)/.test(log), log);
});

Deno.test("every fixture loads with the shape its generator wrote", () => {
  for (const name of FIXTURES) {
    using m = LlamaModel.load(path(name));
    const i = m.info();
    const arch = m.meta("general.architecture");
    assertEquals(arch, name.startsWith("mixtral") ? "llama" : name.replace(/-.*/, ""));
    const ftype = i.desc.replace(/^\S+ \S+ /, "");
    assertEquals(
      [i.nEmbd, i.nLayer, i.nHead, i.nHeadKv, i.vocabType, m.meta(`${arch}.expert_count`), ftype],
      SHAPES[name],
      name,
    );
    assert(m.nVocab > 256 && m.nVocab < 600, `${name}: ${m.nVocab} tokens`);
  }
});

Deno.test("llama.cpp's logits are finite and bit-identical across runs; threads 1 vs 2 compared", () => {
  const ids = Array.from({ length: 40 }, (_, i) => (i * 37 + 5) % 256);
  const report: string[] = [];
  for (const name of FIXTURES) {
    let a: Float32Array[], b: Float32Array[], c: Float32Array[];
    {
      using m = LlamaModel.load(path(name), { threads: 1 });
      a = m.evaluate(ids);
      b = m.evaluate(ids);
    }
    {
      using m = LlamaModel.load(path(name), { threads: 2 });
      c = m.evaluate(ids);
    }
    assertEquals(a.length, ids.length);
    for (const row of a) assert(row.every(Number.isFinite), `${name}: non-finite logit`);
    const spread = Math.max(...a.map((r) => Math.max(...r) - Math.min(...r)));
    assert(spread > 1, `${name}: logits nearly constant (spread ${spread})`);
    assertEquals(maxAbsDiff(a, b).max, 0, `${name}: two runs differ`);
    const t = maxAbsDiff(a, c);
    report.push(`${name} ${t.max === 0 ? "identical" : `max |diff| ${t.max.toExponential(2)}`}`);
    assert(t.max <= 1e-4, `${name}: threads 1 vs 2 differ by ${t.max} at position ${t.row}, id ${t.col}`);
  }
  console.log(`llama.cpp threads 1 vs 2: ${report.join("; ")}`);
});

Deno.test("a sequence evaluated at once equals the logits of the greedy path's prompt prefix", () => {
  using m = LlamaModel.load(path("qwen2moe"));
  const ids = m.tokenize("The quick brown fox jumps over the lazy dog.");
  const full = m.evaluate(ids);
  const prefix = m.evaluate(ids.subarray(0, 5));
  assert(maxAbsDiff(prefix, full.slice(0, 5)).max <= 1e-5, "causal: later tokens changed earlier logits");
  assert(maxAbsDiff([full[5]], [full[6]]).max > 1e-3, "positions are not distinguished");
});

for (const name of FIXTURES) {
  Deno.test(`committed reference of ${name} matches a fresh llama.cpp run`, async () => {
    const ref = readReference(name);
    const { ref: fresh, logits } = await computeReference(name, ref.threads);
    assertEquals(fresh.ggufSha256, ref.ggufSha256, `${name}.gguf changed since its reference was made`);
    assertEquals(
      fresh.prompts.map((p) => [p.name, p.text, p.tokens, p.oneByOne]),
      ref.prompts.map((p) => [p.name, p.text, p.tokens, p.oneByOne]),
    );
    assertEquals(fresh.tokenizations, ref.tokenizations);
    assertEquals(fresh.greedy, ref.greedy);
    ref.prompts.forEach((p, i) => {
      const d = maxAbsDiff(logits[i], ref.logits(i));
      // Bit-identical on the machine that wrote it; another CPU may pick another ggml kernel variant.
      assert(d.max <= 1e-4, `${name} ${p.name}: logits differ by ${d.max} at position ${d.row}, id ${d.col}`);
    });
  });
}

Deno.test("bad input to the oracle is a typed error", () => {
  const missing = assertThrows(() => LlamaModel.load("/nonexistent/model.gguf"), EdgeMoeError);
  assertEquals(missing.code, "io");
  const junk = Deno.makeTempFileSync({ suffix: ".gguf" });
  Deno.writeTextFileSync(junk, "GGUF but not really a model file");
  const bad = assertThrows(() => LlamaModel.load(junk), EdgeMoeError);
  assertEquals(bad.code, "corrupt_data");
  assert(bad.message.includes("llama.cpp refused"), bad.message);
  assertEquals(
    assertThrows(() => LlamaModel.load(path("olmoe"), { threads: 0 }), EdgeMoeError).code,
    "invalid_argument",
  );

  const m = LlamaModel.load(path("olmoe"));
  const range = assertThrows(() => m.evaluate([1, m.nVocab]), EdgeMoeError);
  assertEquals(range.code, "invalid_argument");
  assert(range.message.includes(`expected an id in [0, ${m.nVocab})`), range.message);
  assertEquals(assertThrows(() => m.evaluate([]), EdgeMoeError).code, "invalid_argument");
  assertEquals(assertThrows(() => m.evaluate(new Array(m.nCtx + 1).fill(1)), EdgeMoeError).code, "invalid_argument");
  m.close();
  m.close();
  assertEquals(assertThrows(() => m.evaluate([1]), EdgeMoeError).code, "closed");
});

Deno.test("llama.cpp's quantizer writes the file type asked for, atomically", () => {
  const dir = Deno.makeTempDirSync({ prefix: "edgemoe-oracle-" });
  try {
    // F16 (llama_ftype 1) differs from the default ftype (Q8_0): it proves the ftype offset.
    quantizeModel(path("qwen3moe"), `${dir}/f16.gguf`, 1);
    using m = LlamaModel.load(`${dir}/f16.gguf`);
    assertEquals(m.info().desc, "qwen3moe ?B F16");
    const e = assertThrows(() => quantizeModel(`${dir}/missing.gguf`, `${dir}/out.gguf`, 1), EdgeMoeError);
    assertEquals(e.code, "io");
    Deno.writeTextFileSync(`${dir}/junk.gguf`, "not a gguf file");
    assertEquals(
      assertThrows(() => quantizeModel(`${dir}/junk.gguf`, `${dir}/out.gguf`, 1), EdgeMoeError).code,
      "corrupt_data",
    );
    assertEquals(Array.from(Deno.readDirSync(dir), (f) => f.name).sort(), ["f16.gguf", "junk.gguf"]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a vocab-only load tokenizes like a full one and refuses to evaluate", () => {
  using full = LlamaModel.load(path("mixtral"));
  using vocab = LlamaModel.load(path("mixtral"), { vocabOnly: true });
  const text = "The quick brown fox <s> and </s>";
  assertEquals(vocab.tokenize(text), full.tokenize(text));
  assertEquals([vocab.nVocab, vocab.nCtx, vocab.info().threads], [full.nVocab, 0, 0]);
  const e = assertThrows(() => vocab.evaluate([1, 2]), EdgeMoeError);
  assertEquals(e.code, "unsupported");
  assertEquals(assertThrows(() => vocab.greedy([1], 1), EdgeMoeError).code, "unsupported");
});

Deno.test("ggml logging after an oracle's isolate has ended does not crash a parallel test run", async () => {
  // Two test files in one process: A uses the oracle and ends; B then makes ggml log an error.
  const dir = Deno.makeTempDirSync({ prefix: "edgemoe-oracle-par-" });
  try {
    const oracle = new URL("./oracle/llama.ts", import.meta.url).href;
    Deno.writeTextFileSync(
      `${dir}/a_test.ts`,
      `import { LlamaModel } from "${oracle}";
Deno.test("a", () => { using m = LlamaModel.load(${JSON.stringify(path("olmoe"))}); m.evaluate([1, 2]); });`,
    );
    Deno.writeTextFileSync(
      `${dir}/b_test.ts`,
      `import { DEFAULT_LLAMA_DIR } from "${oracle}";
Deno.test("b", async () => {
  await new Promise((r) => setTimeout(r, 1500));
  const lib = Deno.dlopen(DEFAULT_LLAMA_DIR + "libggml-base.so", {
    gguf_init_from_file: { parameters: ["buffer", { struct: ["u8", "pointer"] }], result: "pointer" },
  });
  const junk = Deno.makeTempFileSync();
  Deno.writeTextFileSync(junk, "not a gguf file");
  const r = lib.symbols.gguf_init_from_file(new TextEncoder().encode(junk + "\\0"), new Uint8Array(16));
  if (r !== null) throw new Error("junk parsed");
});`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["test", "--parallel", "-A", "--no-check", dir],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert(out.success, `exit ${out.code} signal ${out.signal}:\n${text}`);
    assert(/2 passed \| 0 failed/.test(text), text);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("tokenize and detokenize round-trip through llama.cpp", () => {
  for (const name of ["qwen3moe", "olmoe", "mixtral"] as const) {
    using m = LlamaModel.load(path(name));
    const text = "Hello  world — naïve 🙂 123";
    const ids = m.tokenize(text, { addSpecial: false });
    assert(ids.length > 0);
    assertEquals(m.detokenize(ids), text, name);
    // SentencePiece adds a space prefix to the text; detokenize drops it, the raw pieces keep it.
    const bytes = Array.from(ids, (id) => Array.from(m.piece(id))).flat();
    assertEquals(new TextDecoder().decode(new Uint8Array(bytes)), name === "mixtral" ? ` ${text}` : text, name);
  }
});

Deno.test("llama.cpp's batched and one-token-per-decode paths agree except for F16 rounding", () => {
  const report: string[] = [];
  for (const name of FIXTURES) {
    const ref = readReference(name);
    const batched = ref.prompts.findIndex((p) => p.name === "short");
    const single = ref.prompts.findIndex((p) => p.name === "short_one_by_one");
    assertEquals([ref.prompts[single].oneByOne, ref.prompts[batched].oneByOne], [true, false]);
    const d = maxAbsDiff(ref.logits(single), ref.logits(batched)).max;
    report.push(`${name} ${d.toExponential(2)}`);
    assert(d <= (name.endsWith("-f16") ? 1e-2 : 1e-4), `${name}: paths differ by ${d}`);
  }
  console.log(`llama.cpp batched vs one-by-one, max |diff|: ${report.join("; ")}`);
});

Deno.test("committed references are self-consistent and measure quantization noise", () => {
  for (const name of FIXTURES) {
    const ref = readReference(name);
    const short = ref.logits(0);
    assertEquals(ref.greedy.prompt, ref.prompts[0].tokens, name);
    assertEquals(argmaxOf(short[short.length - 1]), ref.greedy.tokens[0], `${name}: greedy starts at the argmax`);
    const self = compareLogits(short, short);
    assertEquals([self.maxAbsDiff, self.top1Agreement, self.meanKl], [0, 1, 0]);
  }
  const report: string[] = [];
  // Each file with the same weights as an F32 fixture, against llama.cpp on that F32 file.
  const pairs = [
    ["qwen3moe-f16", "qwen3moe", 0.95],
    ["qwen3moe-q8_0", "qwen3moe", 0.9],
    ["qwen2moe-q8_0", "qwen2moe", 0.9],
    ["olmoe-q8_0", "olmoe", 0.9],
    ["mixtral-q8_0", "mixtral", 0.9],
  ] as const;
  for (const [name, source, top1Min] of pairs) {
    const q = readReference(name), f32 = readReference(source);
    const rows = (r: typeof f32) => f32.prompts.flatMap((_, i) => r.logits(i));
    const c = compareLogits(rows(q), rows(f32));
    report.push(
      `${name} vs F32: max |diff| ${c.maxAbsDiff.toFixed(4)}, top-1 ${(c.top1Agreement * 100).toFixed(1)}%, ` +
        `mean KL ${c.meanKl.toExponential(2)}`,
    );
    assert(c.maxAbsDiff > 0 && c.top1Agreement >= top1Min, report.at(-1));
  }
  console.log(report.join("\n"));
});
