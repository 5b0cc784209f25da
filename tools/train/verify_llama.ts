/**
 * Checks the exported demo model against llama.cpp (libllama from `@node-llama-cpp/linux-x64` 3.22.1,
 * llama.cpp release v0.5.0) and writes the engine fixtures.
 *
 * 1. F32 GGUF: llama.cpp's logits at every position of the held-out sequences vs PyTorch's
 *    (reference_logits.f32 from export.py); pass when max |Δ| ≤ 1e-3.
 * 2. llama.cpp's tokenization of the test strings vs the `tokenizers` ids in reference.json.
 * 3. Q8_0 GGUF (the shipped file): the same logits comparison, reported (quantization error expected).
 * 4. Fixtures from the shipped file: for each prompt, llama.cpp's logits at the last prompt position and
 *    its greedy continuation of 32 tokens.
 *
 * Usage: deno run -A tools/train/verify_llama.ts --dir EXPORT_DIR --shipped models/demo/X.gguf
 *          --results models/demo/verification.json --fixtures tests/fixtures/demo [--threads 1]
 * Exits non-zero when a check fails.
 */
import { parseArgs } from "node:util";

const LIB_DIR = "/work/main/.tools/npm/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64";
const PARAMS_BYTES = 1024; // llama_model_params / llama_context_params, passed by value (larger than both)
const LOGIT_TOLERANCE = 1e-3;
const GREEDY_TOKENS = 32;
const LLAMA_FTYPE_MOSTLY_Q4_K_M = 15;
const PROMPTS = [
  "Call me Ishmael. Some years ago",
  "Fellow-Citizens of the Senate and of the House of Representatives:",
  "The whale",
];

const opaque = { struct: Array(PARAMS_BYTES / 8).fill("u64") } as const;
const batchStruct = { struct: ["i32", "pointer", "pointer", "pointer", "pointer", "pointer", "pointer"] } as const;

const { values } = parseArgs({
  options: {
    dir: { type: "string" },
    shipped: { type: "string" },
    results: { type: "string" },
    fixtures: { type: "string" },
    threads: { type: "string", default: "1" },
  },
});
if (!values.dir || !values.shipped || !values.results || !values.fixtures) {
  throw new Error("expected --dir, --shipped, --results and --fixtures");
}
const threads = Number(values.threads);

const ggml = Deno.dlopen(`${LIB_DIR}/libggml.v0.5.0.so`, {
  ggml_backend_load_all_from_path: { parameters: ["buffer"], result: "void" },
});
ggml.symbols.ggml_backend_load_all_from_path(cString(LIB_DIR));
const llama = Deno.dlopen(`${LIB_DIR}/libllama.v0.5.0.so`, {
  llama_backend_init: { parameters: [], result: "void" },
  llama_model_default_params: { parameters: [], result: opaque },
  llama_context_default_params: { parameters: [], result: opaque },
  llama_model_quantize_default_params: { parameters: [], result: opaque },
  llama_model_quantize: { parameters: ["buffer", "buffer", "buffer"], result: "u32" },
  llama_model_load_from_file: { parameters: ["buffer", opaque], result: "pointer" },
  llama_model_free: { parameters: ["pointer"], result: "void" },
  llama_init_from_model: { parameters: ["pointer", opaque], result: "pointer" },
  llama_free: { parameters: ["pointer"], result: "void" },
  llama_model_get_vocab: { parameters: ["pointer"], result: "pointer" },
  llama_vocab_n_tokens: { parameters: ["pointer"], result: "i32" },
  llama_tokenize: { parameters: ["pointer", "buffer", "i32", "buffer", "i32", "bool", "bool"], result: "i32" },
  llama_token_to_piece: { parameters: ["pointer", "i32", "buffer", "i32", "i32", "bool"], result: "i32" },
  llama_get_memory: { parameters: ["pointer"], result: "pointer" },
  llama_memory_clear: { parameters: ["pointer", "bool"], result: "void" },
  llama_decode: { parameters: ["pointer", batchStruct], result: "i32" },
  llama_get_logits_ith: { parameters: ["pointer", "i32"], result: "pointer" },
});
const L = llama.symbols;
L.llama_backend_init();

function cString(s: string): Uint8Array {
  return new TextEncoder().encode(s + "\0");
}

class LlamaModel {
  readonly model: Deno.PointerObject;
  readonly ctx: Deno.PointerObject;
  readonly vocab: Deno.PointerValue;
  readonly nVocab: number;

  constructor(path: string, nCtx: number) {
    const mp = L.llama_model_default_params();
    const model = L.llama_model_load_from_file(cString(path), mp);
    if (model === null) throw new Error(`llama.cpp could not load ${path}`);
    this.model = model;
    const cp = L.llama_context_default_params();
    const view = new DataView(cp.buffer, cp.byteOffset, cp.byteLength);
    view.setUint32(0, nCtx, true); // n_ctx
    view.setUint32(4, nCtx, true); // n_batch
    view.setUint32(8, nCtx, true); // n_ubatch
    view.setInt32(28, threads, true); // n_threads
    view.setInt32(32, threads, true); // n_threads_batch
    view.setInt32(52, 0, true); // flash_attn_type: off
    view.setInt32(104, 0, true); // type_k: F32
    view.setInt32(108, 0, true); // type_v: F32
    const ctx = L.llama_init_from_model(model, cp);
    if (ctx === null) throw new Error(`llama.cpp could not create a context for ${path}`);
    this.ctx = ctx;
    this.vocab = L.llama_model_get_vocab(model);
    this.nVocab = L.llama_vocab_n_tokens(this.vocab);
  }

  tokenize(text: string): number[] {
    const bytes = new TextEncoder().encode(text);
    const out = new Int32Array(bytes.length + 8);
    const n = L.llama_tokenize(this.vocab, bytes, bytes.length, out, out.length, false, true);
    if (n < 0) throw new Error(`llama_tokenize needed ${-n} slots`);
    return Array.from(out.subarray(0, n));
  }

  piece(id: number, special = true): Uint8Array {
    const buf = new Uint8Array(256);
    const n = L.llama_token_to_piece(this.vocab, id, buf, buf.length, 0, special);
    if (n < 0) throw new Error(`llama_token_to_piece(${id}) needed ${-n} bytes`);
    return buf.slice(0, n);
  }

  clear(): void {
    L.llama_memory_clear(L.llama_get_memory(this.ctx), true);
  }

  /** Decodes `ids` at positions start.. and returns the logits of the positions flagged in `wantAll`. */
  decode(ids: number[], start: number, wantAll: boolean): Float32Array[] {
    const n = ids.length;
    const token = Int32Array.from(ids);
    const pos = Int32Array.from(ids, (_, i) => start + i);
    const nSeq = new Int32Array(n).fill(1);
    const seq0 = new Int32Array([0]);
    const seqPtr = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(seq0)));
    const seqIds = new BigUint64Array(n).fill(seqPtr);
    const logits = new Int8Array(n).fill(wantAll ? 1 : 0);
    logits[n - 1] = 1;
    const batch = new Uint8Array(56);
    const view = new DataView(batch.buffer);
    view.setInt32(0, n, true);
    const ptrs = [token, null, pos, nSeq, seqIds, logits];
    ptrs.forEach((arr, i) => {
      const p = arr === null ? 0n : BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(arr)));
      view.setBigUint64(8 + 8 * i, p, true);
    });
    const rc = L.llama_decode(this.ctx, batch);
    if (rc !== 0) throw new Error(`llama_decode returned ${rc}`);
    const rows = wantAll ? [...Array(n).keys()] : [n - 1];
    const out = rows.map((r) => {
      const p = L.llama_get_logits_ith(this.ctx, r);
      if (p === null) throw new Error(`no logits for row ${r}`);
      return new Float32Array(new Deno.UnsafePointerView(p).getArrayBuffer(this.nVocab * 4).slice(0));
    });
    // keep the arrays alive until the call has returned
    void [token, pos, nSeq, seq0, seqIds, logits];
    return out;
  }

  close(): void {
    L.llama_free(this.ctx);
    L.llama_model_free(this.model);
  }
}

function argmax(v: Float32Array): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
}

function logSoftmaxAt(row: Float32Array, id: number): number {
  let max = -Infinity;
  for (const v of row) max = Math.max(max, v);
  let sum = 0;
  for (const v of row) sum += Math.exp(v - max);
  return row[id] - max - Math.log(sum);
}

/** Perplexity and bits per byte of `text`, windowed as export.py's score_text does it. */
function scoreText(m: LlamaModel, text: string, window: number) {
  const ids = m.tokenize(text);
  let nll = 0, predicted = 0, bytes = 0;
  for (let start = 0; start < ids.length - 1; start += window) {
    const chunk = ids.slice(start, start + window);
    m.clear();
    const rows = m.decode(chunk, 0, true);
    for (let t = 0; t + 1 < chunk.length; t++) {
      nll -= logSoftmaxAt(rows[t], chunk[t + 1]);
      predicted++;
      bytes += m.piece(chunk[t + 1], false).length;
    }
  }
  return {
    window,
    tokens: ids.length,
    predicted,
    bytes,
    perplexity: Math.exp(nll / predicted),
    bits_per_byte: nll / Math.LN2 / bytes,
  };
}

interface Reference {
  f32_gguf: string;
  q8_0_gguf: string;
  n_vocab: number;
  sequences: number[][];
  tokenizer_strings: { text: string; ids: number[] }[];
  eval_torch: { window: number; perplexity: number; bits_per_byte: number };
}

const ref: Reference = JSON.parse(Deno.readTextFileSync(`${values.dir}/reference.json`));
const torchLogits = new Float32Array(Deno.readFileSync(`${values.dir}/reference_logits.f32`).buffer);
const evalText = Deno.readTextFileSync(`${values.dir}/eval.txt`);

function compareLogits(path: string) {
  const m = new LlamaModel(path, 256);
  if (m.nVocab !== ref.n_vocab) throw new Error(`vocab ${m.nVocab} != ${ref.n_vocab}`);
  let maxAbs = 0, top1Agree = 0, positions = 0;
  const perSequence: number[] = [];
  ref.sequences.forEach((seq, s) => {
    m.clear();
    const rows = m.decode(seq, 0, true);
    let seqMax = 0;
    rows.forEach((row, t) => {
      const base = (s * seq.length + t) * ref.n_vocab;
      const want = torchLogits.subarray(base, base + ref.n_vocab);
      for (let v = 0; v < ref.n_vocab; v++) seqMax = Math.max(seqMax, Math.abs(row[v] - want[v]));
      if (argmax(row) === argmax(want)) top1Agree++;
      positions++;
    });
    perSequence.push(seqMax);
    maxAbs = Math.max(maxAbs, seqMax);
  });
  const tokenizer = ref.tokenizer_strings.map(({ text, ids }) => {
    const got = m.tokenize(text);
    return { text, match: JSON.stringify(got) === JSON.stringify(ids), llama: got, tokenizers: ids };
  });
  const evalScore = scoreText(m, evalText, ref.eval_torch.window);
  m.close();
  return {
    file: path.split("/").pop(),
    positions,
    maxAbsDiff: maxAbs,
    perSequence,
    top1Agreement: top1Agree / positions,
    tokenizer,
    eval: evalScore,
  };
}

/** Quantizes the F32 file with llama.cpp's own quantizer (gguf-py has no K-quant quantizer). */
function quantizeQ4KM(input: string, output: string): void {
  const qp = L.llama_model_quantize_default_params();
  const view = new DataView(qp.buffer, qp.byteOffset, qp.byteLength);
  view.setInt32(0, threads, true); // nthread
  view.setInt32(4, LLAMA_FTYPE_MOSTLY_Q4_K_M, true); // ftype
  const rc = L.llama_model_quantize(cString(input), cString(output), qp);
  if (rc !== 0) throw new Error(`llama_model_quantize returned ${rc}`);
}

const f32 = compareLogits(`${values.dir}/${ref.f32_gguf}`);
const q8 = compareLogits(`${values.dir}/${ref.q8_0_gguf}`);
const q4kmPath = `${values.dir}/edgemoe-demo-q4_k_m.gguf`;
quantizeQ4KM(`${values.dir}/${ref.f32_gguf}`, q4kmPath);
const q4km = compareLogits(q4kmPath);
const f32Pass = f32.maxAbsDiff <= LOGIT_TOLERANCE;
const tokPass = f32.tokenizer.every((t) => t.match) && q8.tokenizer.every((t) => t.match);

const shipped = new LlamaModel(values.shipped, 256);
Deno.mkdirSync(values.fixtures, { recursive: true });
const fixturePrompts = PROMPTS.map((prompt, i) => {
  shipped.clear();
  const promptIds = shipped.tokenize(prompt);
  const [last] = shipped.decode(promptIds, 0, false);
  const logitsFile = `prompt${i}_last_logits.f32`;
  Deno.writeFileSync(`${values.fixtures}/${logitsFile}`, new Uint8Array(last.buffer));
  const greedy: number[] = [];
  let next = argmax(last);
  for (let t = 0; t < GREEDY_TOKENS; t++) {
    greedy.push(next);
    if (t + 1 < GREEDY_TOKENS) next = argmax(shipped.decode([next], promptIds.length + t, false)[0]);
  }
  const bytes = greedy.flatMap((id) => Array.from(shipped.piece(id)));
  const text = new TextDecoder().decode(new Uint8Array(bytes));
  return { prompt, prompt_ids: promptIds, last_logits_file: logitsFile, greedy_ids: greedy, greedy_text: text };
});
shipped.close();
const shippedName = values.shipped.split("/").pop();
Deno.writeTextFileSync(
  `${values.fixtures}/greedy.json`,
  JSON.stringify(
    {
      model: shippedName,
      generator: "tools/train/verify_llama.ts",
      reference: "libllama v0.5.0 (@node-llama-cpp/linux-x64 3.22.1), F32 KV cache, flash attention off",
      n_vocab: ref.n_vocab,
      logits_format: "little-endian f32 [n_vocab], logits after the last prompt token",
      prompts: fixturePrompts,
    },
    null,
    1,
  ) + "\n",
);

const results = {
  reference: "libllama v0.5.0 (@node-llama-cpp/linux-x64 3.22.1), F32 KV cache, flash attention off",
  tolerance: LOGIT_TOLERANCE,
  eval_torch: ref.eval_torch,
  f32,
  q8_0: q8,
  q4_k_m: q4km,
  pass: { f32_logits: f32Pass, tokenizer: tokPass },
};
Deno.writeTextFileSync(values.results, JSON.stringify(results, null, 1) + "\n");
for (const r of [f32, q8, q4km]) {
  console.log(
    `${r.file}: ${r.positions} positions, max |Δlogit| ${r.maxAbsDiff.toExponential(3)}, top-1 agreement ${
      (100 * r.top1Agreement).toFixed(1)
    }%, tokenizer ${r.tokenizer.filter((t) => t.match).length}/${r.tokenizer.length} strings identical, eval.txt ppl ${
      r.eval.perplexity.toFixed(3)
    } bpb ${r.eval.bits_per_byte.toFixed(4)}`,
  );
}
console.log(
  `PyTorch: eval.txt ppl ${ref.eval_torch.perplexity.toFixed(3)} bpb ${ref.eval_torch.bits_per_byte.toFixed(4)}`,
);
for (const p of fixturePrompts) console.log(`greedy: ${JSON.stringify(p.prompt)} -> ${JSON.stringify(p.greedy_text)}`);
console.log(`F32 logits ${f32Pass ? "OK" : "NOT OK"}, tokenizer ${tokPass ? "OK" : "NOT OK"}`);
if (!f32Pass || !tokPass) Deno.exit(1);
