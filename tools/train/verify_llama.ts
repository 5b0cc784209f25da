/**
 * Checks the exported demo model against llama.cpp (the test oracle of tests/oracle/llama.ts: the pinned
 * prebuilt libllama, F32 KV cache, flash attention off) and writes the engine fixtures.
 *
 * 1. F32 GGUF: llama.cpp's logits at every position of the held-out sequences vs PyTorch's
 *    (reference_logits.f32 from export.py); pass when max |Δ| ≤ 1e-3.
 * 2. llama.cpp's tokenization of the test strings vs the `tokenizers` ids in reference.json.
 * 3. Perplexity and bits per byte of eval.txt by llama.cpp, for the F32 file, the Q8_0 file and a Q4_K_M
 *    file quantized from the F32 one by llama.cpp (PyTorch's own numbers are in reference.json).
 * 4. Fixtures from the shipped file: for each prompt, llama.cpp's logits at the last prompt position
 *    (one batched decode of the prompt) and its greedy continuation of 32 tokens.
 *
 *   deno run -A tools/train/verify_llama.ts --dir EXPORT_DIR --shipped models/demo/edgemoe-demo-q8_0.gguf \
 *     --results models/demo/verification.json --fixtures tests/fixtures/demo [--threads 1]
 *
 * Exits non-zero when check 1 or 2 fails.
 *
 * @module
 */
import { parseArgs } from "../../src/std/cli.ts";
import { LLAMA_FTYPE, LlamaModel, llamaVersion, quantizeModel } from "../../tests/oracle/llama.ts";
import { argmaxOf, compareLogits, sha256File } from "../../tests/oracle/reference.ts";

const LOGIT_TOLERANCE = 1e-3;
const GREEDY_TOKENS = 32;
const N_CTX = 256;
const PROMPTS = [
  "Call me Ishmael. Some years ago",
  "Fellow-Citizens of the Senate and of the House of Representatives:",
  "The whale",
];

interface Reference {
  f32_gguf: string;
  q8_0_gguf: string;
  n_vocab: number;
  sequences: number[][];
  tokenizer_strings: { text: string; ids: number[] }[];
  eval_torch: { window: number; perplexity: number; bits_per_byte: number };
}

const args = parseArgs(Deno.args, {
  string: ["dir", "shipped", "results", "fixtures", "threads"],
  default: { threads: "1" },
});
const [dir, shipped, resultsPath, fixtureDir] = [args.dir, args.shipped, args.results, args.fixtures];
if (
  typeof dir !== "string" || typeof shipped !== "string" || typeof resultsPath !== "string" ||
  typeof fixtureDir !== "string"
) {
  throw new Error("expected --dir, --shipped, --results and --fixtures");
}
const threads = Number(args.threads);
const ref: Reference = JSON.parse(Deno.readTextFileSync(`${dir}/reference.json`));
const torchLogits = new Float32Array(Deno.readFileSync(`${dir}/reference_logits.f32`).buffer);
const evalText = Deno.readTextFileSync(`${dir}/eval.txt`);

function logSoftmaxAt(row: Float32Array, id: number): number {
  let max = -Infinity;
  for (const v of row) max = Math.max(max, v);
  let sum = 0;
  for (const v of row) sum += Math.exp(v - max);
  return row[id] - max - Math.log(sum);
}

/** Perplexity and bits per byte of `text`, windowed as export.py's score_text does it. */
function scoreText(m: LlamaModel, text: string, window: number) {
  const ids = m.tokenize(text, { addSpecial: false });
  let nll = 0, predicted = 0, bytes = 0;
  for (let start = 0; start < ids.length - 1; start += window) {
    const chunk = ids.subarray(start, start + window);
    const rows = m.evaluate(chunk);
    for (let t = 0; t + 1 < chunk.length; t++) {
      nll -= logSoftmaxAt(rows[t], chunk[t + 1]);
      predicted++;
      bytes += m.piece(chunk[t + 1]).length;
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

function check(path: string) {
  using m = LlamaModel.load(path, { threads, nCtx: N_CTX });
  if (m.nVocab !== ref.n_vocab) throw new Error(`${path}: vocab ${m.nVocab}, expected ${ref.n_vocab}`);
  const perSequence = ref.sequences.map((seq, s) => {
    const expected = seq.map((_, t) => {
      const base = (s * seq.length + t) * ref.n_vocab;
      return torchLogits.slice(base, base + ref.n_vocab);
    });
    return compareLogits(m.evaluate(seq), expected);
  });
  const tokenizer = ref.tokenizer_strings.map(({ text, ids }) => {
    const got = Array.from(m.tokenize(text, { addSpecial: false }));
    return { text, match: JSON.stringify(got) === JSON.stringify(ids), llama: got, tokenizers: ids };
  });
  return {
    file: path.split("/").pop(),
    positions: ref.sequences.reduce((n, s) => n + s.length, 0),
    maxAbsDiff: Math.max(...perSequence.map((c) => c.maxAbsDiff)),
    top1Agreement: perSequence.reduce((a, c) => a + c.top1Agreement, 0) / perSequence.length,
    meanKl: perSequence.reduce((a, c) => a + c.meanKl, 0) / perSequence.length,
    perSequence,
    tokenizer,
    eval: scoreText(m, evalText, ref.eval_torch.window),
  };
}

const f32 = check(`${dir}/${ref.f32_gguf}`);
const q8 = check(`${dir}/${ref.q8_0_gguf}`);
const q4kmPath = `${dir}/edgemoe-demo-q4_k_m.gguf`;
quantizeModel(`${dir}/${ref.f32_gguf}`, q4kmPath, LLAMA_FTYPE.MOSTLY_Q4_K_M, threads);
const q4km = check(q4kmPath);
const f32Pass = f32.maxAbsDiff <= LOGIT_TOLERANCE;
const tokPass = [f32, q8, q4km].every((r) => r.tokenizer.every((t) => t.match));
const llama = `${llamaVersion()}, ${threads} thread(s), F32 KV cache, flash attention off`;

Deno.mkdirSync(fixtureDir, { recursive: true });
const fixturePrompts = (() => {
  using m = LlamaModel.load(shipped, { threads, nCtx: N_CTX });
  return PROMPTS.map((prompt, i) => {
    const promptIds = m.tokenize(prompt, { addSpecial: false });
    const rows = m.evaluate(promptIds);
    const last = rows[rows.length - 1];
    const logitsFile = `prompt${i}.last_logits.f32`;
    Deno.writeFileSync(`${fixtureDir}/${logitsFile}`, new Uint8Array(last.buffer));
    const greedy = m.greedy(promptIds, GREEDY_TOKENS);
    if (greedy[0] !== argmaxOf(last)) throw new Error("greedy's first token is not the argmax of the last logits");
    const text = new TextDecoder().decode(new Uint8Array(Array.from(greedy).flatMap((id) => Array.from(m.piece(id)))));
    return {
      prompt,
      prompt_ids: Array.from(promptIds),
      last_logits_file: logitsFile,
      greedy_ids: Array.from(greedy),
      greedy_text: text,
    };
  });
})();
Deno.writeTextFileSync(
  `${fixtureDir}/greedy.json`,
  JSON.stringify(
    {
      model: `models/demo/${shipped.split("/").pop()}`,
      ggufSha256: await sha256File(shipped),
      generator: "tools/train/verify_llama.ts",
      llama,
      n_vocab: ref.n_vocab,
      logits_format: "little-endian f32 [n_vocab]: the logits after the last prompt token (prompt in one decode)",
      greedy: "argmax (lowest id on a tie), one token per decode after the prompt",
      prompts: fixturePrompts,
    },
    null,
    1,
  ) + "\n",
);

Deno.writeTextFileSync(
  resultsPath,
  JSON.stringify(
    {
      llama,
      tolerance: LOGIT_TOLERANCE,
      pass: { f32_logits: f32Pass, tokenizer: tokPass },
      eval_torch: ref.eval_torch,
      f32,
      q8_0: q8,
      q4_k_m: q4km,
    },
    null,
    1,
  ) + "\n",
);
for (const r of [f32, q8, q4km]) {
  console.log(
    `${r.file}: ${r.positions} positions, max |Δlogit| ${r.maxAbsDiff.toExponential(3)}, top-1 ${
      (100 * r.top1Agreement).toFixed(1)
    }%, mean KL ${r.meanKl.toExponential(2)}, tokenizer ${
      r.tokenizer.filter((t) => t.match).length
    }/${r.tokenizer.length}, eval.txt ppl ${r.eval.perplexity.toFixed(3)} bpb ${r.eval.bits_per_byte.toFixed(4)}`,
  );
}
console.log(
  `PyTorch: eval.txt ppl ${ref.eval_torch.perplexity.toFixed(3)} bpb ${ref.eval_torch.bits_per_byte.toFixed(4)}`,
);
for (const p of fixturePrompts) console.log(`greedy: ${JSON.stringify(p.prompt)} -> ${JSON.stringify(p.greedy_text)}`);
console.log(`F32 logits ${f32Pass ? "OK" : "NOT OK"}, tokenizer ${tokPass ? "OK" : "NOT OK"}`);
if (!f32Pass || !tokPass) Deno.exit(1);
