/**
 * The committed llama.cpp references for the tiny MoE fixtures in
 * tests/fixtures/models/: what llama.cpp computed on each GGUF file
 * (tools/fixtures/make_reference_logits.ts wrote them). Reading them needs
 * neither libllama nor Python, so engine tests can compare against them
 * anywhere.
 *
 * Per fixture NAME:
 * - `NAME.gguf`: the model (tools/fixtures/make_tiny_moe.py; most quantized
 *   ones made from an F32 source by llama.cpp, make_reference_logits.ts).
 * - `NAME.reference.json`: a {@linkcode Reference}: the file's SHA-256, the
 *   llama.cpp settings, each prompt's token ids and where its logits start,
 *   a greedy continuation, and llama.cpp's tokenization of a set of strings.
 * - `NAME.logits.f32`: every prompt's logits, little-endian float32, prompt
 *   after prompt, each `[position][nVocab]` row-major.
 *
 * @module
 */
import { EdgeMoeError } from "../../src/errors.ts";

/** The directory holding the fixtures. */
export const FIXTURE_DIR: string = new URL("../fixtures/models/", import.meta.url).pathname;

/** Every fixture, by file stem. */
export const FIXTURES = [
  "qwen3moe",
  "qwen3moe-f16",
  "qwen3moe-q8_0",
  "qwen3moe-q4_k_m",
  "qwen2moe",
  "olmoe",
  "mixtral",
  "qwen2moe-q8_0",
  "qwen2moe-q4_k_m",
  "olmoe-q8_0",
  "olmoe-q4_k_m",
  "mixtral-q8_0",
  "mixtral-q4_k_m",
] as const;

/** A fixture's file stem. */
export type FixtureName = typeof FIXTURES[number];

/** One evaluated token sequence. */
export interface ReferencePrompt {
  /** What it is, e.g. `"short"`. */
  name: string;
  /** The text it was tokenized from (by llama.cpp, with special tokens added and parsed), if any. */
  text?: string;
  /** The token ids evaluated, at positions 0..n-1, in one sequence. */
  tokens: number[];
  /**
   * `false`: all tokens in one `llama_decode` (the batched prompt path); `true`: one token per
   * `llama_decode` against the KV cache (the generation path).
   */
  oneByOne: boolean;
  /** Index of its first float in `NAME.logits.f32`. */
  offset: number;
}

/** One tokenization by llama.cpp (`llama_tokenize`). */
export interface ReferenceTokenization {
  /** The input. */
  text: string;
  /** BOS/EOS added as the model's metadata asks. */
  addSpecial: boolean;
  /** Special-token text turned into its id. */
  parseSpecial: boolean;
  /** The ids. */
  ids: number[];
  /** `llama_detokenize(ids)` (special tokens rendered, none removed). */
  detokenized: string;
}

/** The contents of `NAME.reference.json`. */
export interface Reference {
  /** The fixture's file stem. */
  fixture: FixtureName;
  /** SHA-256 of `NAME.gguf` as hex: a regenerated model makes its reference stale. */
  ggufSha256: string;
  /** Which llama.cpp produced it. */
  llama: string;
  /** llama.cpp settings: threads, KV cache type, flash attention. */
  threads: number;
  /** KV cache type. */
  kvType: "f32";
  /** Flash attention was off. */
  flashAttn: false;
  /** Vocabulary size: the length of each logits row. */
  nVocab: number;
  /** The evaluated sequences. */
  prompts: ReferencePrompt[];
  /**
   * Greedy decoding (argmax, lowest id on a tie) from `prompt`, one token at a time after the prompt;
   * `minMargin` is the smallest gap between the best and second-best logit along the way.
   */
  greedy: { prompt: number[]; tokens: number[]; minMargin: number };
  /** Tokenizations of assorted strings. */
  tokenizations: ReferenceTokenization[];
}

/** A reference with its logits loaded. */
export interface LoadedReference extends Reference {
  /** Logits of prompt `i`, one `Float32Array` of `nVocab` per position. */
  logits(i: number): Float32Array[];
}

/** Reads the committed reference of `name`. */
export function readReference(name: FixtureName): LoadedReference {
  const op = `read reference ${name}`;
  let ref: Reference;
  let raw: Uint8Array;
  try {
    ref = JSON.parse(Deno.readTextFileSync(`${FIXTURE_DIR}${name}.reference.json`));
    raw = Deno.readFileSync(`${FIXTURE_DIR}${name}.logits.f32`);
  } catch (e) {
    throw new EdgeMoeError("io", op, `${(e as Error).message}; run tools/fixtures/make_reference_logits.ts`, {
      cause: e,
    });
  }
  const total = ref.prompts.reduce((n, p) => n + p.tokens.length * ref.nVocab, 0);
  if (raw.byteLength !== total * 4) {
    throw new EdgeMoeError("corrupt_data", op, `${name}.logits.f32 has ${raw.byteLength} bytes, expected ${total * 4}`);
  }
  const all = new Float32Array(raw.buffer, raw.byteOffset, total);
  return {
    ...ref,
    logits(i: number): Float32Array[] {
      const p = ref.prompts[i];
      if (p === undefined) throw new EdgeMoeError("invalid_argument", op, `no prompt ${i} (${ref.prompts.length})`);
      return p.tokens.map((_, j) => all.slice(p.offset + j * ref.nVocab, p.offset + (j + 1) * ref.nVocab));
    },
  };
}

/** SHA-256 of a file, as hex. */
export async function sha256File(path: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** How far logits are from reference logits: the measures of the "Run real MoE models" issue. */
export interface LogitsComparison {
  /** The largest |actual - expected| over every position and id. */
  maxAbsDiff: number;
  /** Position and id of that largest difference. */
  at: { row: number; col: number };
  /** Fraction of positions whose argmax agrees. */
  top1Agreement: number;
  /** Mean over positions of KL(softmax(expected) || softmax(actual)), in nats. */
  meanKl: number;
}

function logSoftmax(row: Float32Array): Float64Array {
  let max = -Infinity;
  for (const v of row) if (v > max) max = v;
  let sum = 0;
  for (const v of row) sum += Math.exp(v - max);
  const lse = max + Math.log(sum);
  return Float64Array.from(row, (v) => v - lse);
}

/**
 * Compares `actual` logits (one row per position) with `expected` ones.
 *
 * @throws {EdgeMoeError} `invalid_argument` when the shapes differ.
 */
export function compareLogits(actual: Float32Array[], expected: Float32Array[]): LogitsComparison {
  const d = maxAbsDiff(actual, expected);
  let agree = 0, kl = 0;
  actual.forEach((a, r) => {
    const e = expected[r];
    if (argmaxOf(a) === argmaxOf(e)) agree++;
    const la = logSoftmax(a), le = logSoftmax(e);
    for (let i = 0; i < le.length; i++) kl += Math.exp(le[i]) * (le[i] - la[i]);
  });
  const n = Math.max(1, actual.length);
  return { maxAbsDiff: d.max, at: { row: d.row, col: d.col }, top1Agreement: agree / n, meanKl: kl / n };
}

/** Index of the largest value (the lowest index on a tie). */
export function argmaxOf(v: Float32Array): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
}

/** The largest |a[i] - b[i]| over all rows, and where it is. */
export function maxAbsDiff(a: Float32Array[], b: Float32Array[]): { max: number; row: number; col: number } {
  if (a.length !== b.length) {
    throw new EdgeMoeError("invalid_argument", "compare logits", `${a.length} rows vs ${b.length} rows`);
  }
  let best = { max: 0, row: -1, col: -1 };
  a.forEach((ra, r) => {
    const rb = b[r];
    if (ra.length !== rb.length) {
      throw new EdgeMoeError("invalid_argument", "compare logits", `row ${r}: ${ra.length} vs ${rb.length} values`);
    }
    for (let c = 0; c < ra.length; c++) {
      const d = Math.abs(ra[c] - rb[c]);
      if (!(d <= best.max)) best = { max: Number.isNaN(d) ? Infinity : d, row: r, col: c };
    }
  });
  return best;
}
