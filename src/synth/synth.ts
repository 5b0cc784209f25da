/**
 * Synthetic MoE models for benchmarks: a valid Qwen3-MoE GGUF with random
 * weights (deterministic from a seed) and a small byte-level BPE tokenizer,
 * written by streaming one expert at a time through the atomic GGUF writer,
 * quantized by the native quantizers. llama.cpp loads what this writes.
 *
 * @module
 */
import { EdgeMoeError } from "../errors.ts";
import type { GgmlTypeName, NativeLibrary } from "../../ffi/native.ts";
import { BYTE_TO_CHAR } from "../tokenizer/byte_level.ts";
import { ggmlTypeByName, type GgmlTypeInfo, type GgufTensorSpec, type GgufValue, writeGguf } from "../gguf/mod.ts";

/** The shape of a synthetic model. */
export interface SynthSpec {
  /** Architecture (only `"qwen3moe"` today). */
  arch: "qwen3moe";
  /** Transformer blocks. */
  layers: number;
  /** Experts per layer. */
  experts: number;
  /** Experts used per token. */
  topK: number;
  /** Embedding width. */
  hidden: number;
  /** Each expert's FFN width. */
  expertFfn: number;
  /** Attention heads. */
  heads: number;
  /** Key/value heads (GQA). */
  kvHeads: number;
  /** Width of one head. */
  headDim: number;
  /** Tokens in the synthetic vocabulary (≥ 259: 256 bytes, merges, 3 specials). */
  vocab: number;
  /** GGML type of the matrices (norms and routers stay F32), e.g. `"F16"`, `"Q8_0"`, `"Q4_K"`. */
  type: string;
  /** Seed of the weights. */
  seed: number;
}

/** Shapes of real models (a small synthetic vocabulary where the real one is large). */
export const SYNTH_PRESETS: Readonly<Record<string, Omit<SynthSpec, "type" | "seed">>> = {
  /** Qwen3-30B-A3B: 48 layers, 128 experts, top-8, hidden 2048, expert FFN 768, 32/4 heads of 128. */
  "qwen3-30b-a3b": {
    arch: "qwen3moe",
    layers: 48,
    experts: 128,
    topK: 8,
    hidden: 2048,
    expertFfn: 768,
    heads: 32,
    kvHeads: 4,
    headDim: 128,
    vocab: 151936,
  },
  /** Qwen3-30B-A3B's layer shape with 24 layers and 64 experts: 13.5 GiB of F16 experts, 3.8 GiB in Q4_K. */
  "qwen3-moe-small": {
    arch: "qwen3moe",
    layers: 24,
    experts: 64,
    topK: 8,
    hidden: 2048,
    expertFfn: 768,
    heads: 32,
    kvHeads: 4,
    headDim: 128,
    vocab: 8192,
  },
  /** A few MiB, for tests. */
  tiny: {
    arch: "qwen3moe",
    layers: 2,
    experts: 8,
    topK: 2,
    hidden: 64,
    expertFfn: 32,
    heads: 4,
    kvHeads: 2,
    headDim: 16,
    vocab: 384,
  },
};

const OP = "synth";
const SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];
/** Elements generated per chunk of a non-expert tensor. */
const CHUNK_ELEMS = 1 << 20;

function check(ok: boolean, detail: string): void {
  if (!ok) throw new EdgeMoeError("invalid_argument", OP, detail);
}

/** Checks a spec; returns the GGML type of its matrices. */
export function validateSynthSpec(s: SynthSpec): GgmlTypeInfo {
  check(s.arch === "qwen3moe", `architecture must be qwen3moe, got "${s.arch}"`);
  for (const k of ["layers", "experts", "topK", "hidden", "expertFfn", "heads", "kvHeads", "headDim"] as const) {
    check(
      Number.isSafeInteger(s[k]) && s[k] >= 1 && s[k] <= 1 << 20,
      `${k} must be an integer in 1..2^20, got ${s[k]}`,
    );
  }
  check(s.topK <= s.experts, `top-k ${s.topK} exceeds the ${s.experts} experts`);
  check(s.heads % s.kvHeads === 0, `heads ${s.heads} is not a multiple of kv heads ${s.kvHeads}`);
  check(s.headDim % 2 === 0, `head_dim must be even (RoPE), got ${s.headDim}`);
  check(
    Number.isSafeInteger(s.vocab) && s.vocab >= 256 + SPECIALS.length && s.vocab <= 1 << 20,
    `vocab must be an integer in ${256 + SPECIALS.length}..2^20, got ${s.vocab}`,
  );
  check(Number.isSafeInteger(s.seed) && s.seed >= 0 && s.seed < 2 ** 32, `seed must be in 0..2^32-1, got ${s.seed}`);
  let t: GgmlTypeInfo;
  try {
    t = ggmlTypeByName(s.type);
  } catch (e) {
    throw new EdgeMoeError("invalid_argument", OP, `unknown tensor type "${s.type}"`, { cause: e });
  }
  for (
    const [what, cols] of [["hidden", s.hidden], ["expert FFN", s.expertFfn], [
      "heads × head_dim",
      s.heads * s.headDim,
    ]] as const
  ) {
    check(cols % t.blockElems === 0, `${what} ${cols} is not a multiple of the ${t.name} block size ${t.blockElems}`);
  }
  return t;
}

interface SynthTensor {
  name: string;
  /** GGML order: `[cols, rows, experts]`. */
  dims: number[];
  type: GgmlTypeInfo;
  /** Standard deviation and mean of the values. */
  std: number;
  mean: number;
}

/** Every tensor of a spec, in file order. */
function synthTensors(s: SynthSpec): SynthTensor[] {
  const t = validateSynthSpec(s);
  const q = s.heads * s.headDim, kv = s.kvHeads * s.headDim;
  const f32 = ggmlTypeByName("f32");
  // Embeddings and the head in F16 at most (every engine can read rows of those).
  const emb = t.id === f32.id ? f32 : ggmlTypeByName("f16");
  const out: SynthTensor[] = [];
  const add = (name: string, dims: number[], type: GgmlTypeInfo, std: number, mean = 0) =>
    out.push({ name, dims, type, std, mean });
  add("token_embd.weight", [s.hidden, s.vocab], emb, 1);
  for (let i = 0; i < s.layers; i++) {
    const p = `blk.${i}.`;
    add(p + "attn_norm.weight", [s.hidden], f32, 0.1, 1);
    add(p + "attn_q.weight", [s.hidden, q], t, 1 / Math.sqrt(s.hidden));
    add(p + "attn_k.weight", [s.hidden, kv], t, 1 / Math.sqrt(s.hidden));
    add(p + "attn_v.weight", [s.hidden, kv], t, 1 / Math.sqrt(s.hidden));
    add(p + "attn_q_norm.weight", [s.headDim], f32, 0.1, 1);
    add(p + "attn_k_norm.weight", [s.headDim], f32, 0.1, 1);
    add(p + "attn_output.weight", [q, s.hidden], t, 1 / Math.sqrt(q));
    add(p + "ffn_norm.weight", [s.hidden], f32, 0.1, 1);
    add(p + "ffn_gate_inp.weight", [s.hidden, s.experts], f32, 2 / Math.sqrt(s.hidden));
    add(p + "ffn_gate_exps.weight", [s.hidden, s.expertFfn, s.experts], t, 1 / Math.sqrt(s.hidden));
    add(p + "ffn_up_exps.weight", [s.hidden, s.expertFfn, s.experts], t, 1 / Math.sqrt(s.hidden));
    add(p + "ffn_down_exps.weight", [s.expertFfn, s.hidden, s.experts], t, 1 / Math.sqrt(s.expertFfn));
  }
  add("output_norm.weight", [s.hidden], f32, 0.1, 1);
  add("output.weight", [s.hidden, s.vocab], emb, 1 / Math.sqrt(s.hidden));
  return out;
}

function dataBytes(t: SynthTensor): number {
  return (t.dims.reduce((a, b) => a * b, 1) / t.type.blockElems) * t.type.blockBytes;
}

/** Bytes of tensor data (without header and padding) a spec produces: experts and the rest. */
export function synthBytes(s: SynthSpec): { expertBytes: number; residentBytes: number } {
  let expertBytes = 0, residentBytes = 0;
  for (const t of synthTensors(s)) {
    if (t.dims.length === 3) expertBytes += dataBytes(t);
    else residentBytes += dataBytes(t);
  }
  return { expertBytes, residentBytes };
}

/** FNV-1a of a string, mixed with the seed: an independent stream per tensor. */
function streamSeed(seed: number, name: string): number {
  let h = 0x811c9dc5 ^ seed;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return (h >>> 0) || 1;
}

/**
 * Fills `out` with uniform values of standard deviation `std` from a
 * xorshift32 state around `mean`; returns the next state.
 */
function fillUniform(out: Float32Array, state: number, std: number, mean: number): number {
  const scale = (std * Math.sqrt(3) * 2) / 4294967296;
  const low = mean - std * Math.sqrt(3);
  let x = state;
  for (let i = 0; i < out.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = (x >>> 0) * scale + low;
  }
  return x;
}

/** The synthetic tokenizer: 256 byte symbols, two-symbol merges, then the specials. */
function vocabulary(n: number): { tokens: string[]; merges: string[] } {
  const tokens = [...BYTE_TO_CHAR];
  const merges: string[] = [];
  const want = n - SPECIALS.length;
  // Pairs of letters and spaces first (so text tokenizes into merged pieces), then every other byte pair,
  // then a merged pair followed by a byte: all distinct strings.
  const order = [..." etaoinshrdlucmfwypvbgkjqxz".split("").map((c) => c.charCodeAt(0))];
  const rest = [...Array(256).keys()].filter((b) => !order.includes(b));
  const bytes = [...order, ...rest];
  outer: for (const a of bytes) {
    for (const b of bytes) {
      if (tokens.length >= want) break outer;
      tokens.push(BYTE_TO_CHAR[a] + BYTE_TO_CHAR[b]);
      merges.push(`${BYTE_TO_CHAR[a]} ${BYTE_TO_CHAR[b]}`);
    }
  }
  const pairs = tokens.length;
  for (let i = 256; i < pairs && tokens.length < want; i++) {
    for (const b of bytes) {
      if (tokens.length >= want) break;
      tokens.push(tokens[i] + BYTE_TO_CHAR[b]);
      merges.push(`${tokens[i]} ${BYTE_TO_CHAR[b]}`);
    }
  }
  return { tokens: [...tokens, ...SPECIALS], merges };
}

/** Metadata of a spec: llama.cpp's qwen3moe keys and a GPT-2 style tokenizer. */
export function synthMetadata(s: SynthSpec, name: string): [string, GgufValue][] {
  const u32 = (value: number): GgufValue => ({ type: "u32", value });
  const f32 = (value: number): GgufValue => ({ type: "f32", value });
  const k = s.arch;
  const { tokens, merges } = vocabulary(s.vocab);
  const types = new Int32Array(tokens.length).fill(1);
  types.fill(3, tokens.length - SPECIALS.length);
  const eot = tokens.length - SPECIALS.length;
  return [
    ["general.architecture", { type: "string", value: k }],
    ["general.name", { type: "string", value: name }],
    ["edgemoe.synth.seed", u32(s.seed)],
    [`${k}.context_length`, u32(4096)],
    [`${k}.embedding_length`, u32(s.hidden)],
    [`${k}.block_count`, u32(s.layers)],
    [`${k}.feed_forward_length`, u32(s.expertFfn)],
    [`${k}.expert_feed_forward_length`, u32(s.expertFfn)],
    [`${k}.attention.head_count`, u32(s.heads)],
    [`${k}.attention.head_count_kv`, u32(s.kvHeads)],
    [`${k}.attention.key_length`, u32(s.headDim)],
    [`${k}.attention.value_length`, u32(s.headDim)],
    [`${k}.attention.layer_norm_rms_epsilon`, f32(1e-6)],
    [`${k}.rope.freq_base`, f32(1e6)],
    [`${k}.rope.dimension_count`, u32(s.headDim)],
    [`${k}.expert_count`, u32(s.experts)],
    [`${k}.expert_used_count`, u32(s.topK)],
    ["tokenizer.ggml.model", { type: "string", value: "gpt2" }],
    ["tokenizer.ggml.pre", { type: "string", value: "qwen2" }],
    ["tokenizer.ggml.tokens", { type: "array", itemType: "string", value: tokens }],
    ["tokenizer.ggml.token_type", { type: "array", itemType: "i32", value: types }],
    ["tokenizer.ggml.merges", { type: "array", itemType: "string", value: merges }],
    ["tokenizer.ggml.bos_token_id", u32(eot)],
    ["tokenizer.ggml.eos_token_id", u32(eot + 2)],
    ["tokenizer.ggml.padding_token_id", u32(eot)],
    ["tokenizer.ggml.add_bos_token", { type: "bool", value: false }],
  ];
}

/** Options of {@linkcode writeSynth}. */
export interface SynthWriteOptions {
  /** Replace an existing file. */
  overwrite?: boolean;
  /** Called after each tensor, with the count done and the total. */
  onTensor?: (done: number, total: number) => void;
}

/**
 * Writes the synthetic model `spec` to `path` (atomically, streaming: at most
 * one expert matrix is in memory at a time).
 *
 * @throws {EdgeMoeError} `invalid_argument` for a bad spec or an existing file, `io`.
 */
export async function writeSynth(
  lib: NativeLibrary,
  path: string,
  spec: SynthSpec,
  opts: SynthWriteOptions = {},
): Promise<{ fileBytes: number }> {
  const t = validateSynthSpec(spec);
  const s = spec;
  const tensors: GgufTensorSpec[] = synthTensors(s).map(({ name, dims, type, std, mean }) => ({
    name,
    type: type.id,
    dims,
    data: async function* () {
      // One expert (or about CHUNK_ELEMS values of a resident tensor) at a time.
      const [cols, rows = 1, stack = 1] = dims;
      const chunkRows = stack > 1 ? rows : Math.max(1, Math.floor(CHUNK_ELEMS / cols));
      const buf = new Float32Array(Math.min(rows, chunkRows) * cols);
      let state = streamSeed(s.seed, name);
      for (let e = 0; e < stack; e++) {
        for (let r = 0; r < rows; r += chunkRows) {
          const chunk = buf.subarray(0, Math.min(chunkRows, rows - r) * cols);
          state = fillUniform(chunk, state, std, mean);
          yield lib.quantize(type.name as GgmlTypeName, chunk);
        }
      }
    },
  }));
  const name =
    `edgemoe synth ${s.arch} ${s.layers}L ${s.experts}x${s.expertFfn} top-${s.topK} ${t.name} seed ${s.seed}`;
  const result = await writeGguf(path, synthMetadata(s, name), tensors, {
    overwrite: opts.overwrite,
    onTensor: (i) => opts.onTensor?.(i + 1, tensors.length),
  });
  return { fileBytes: result.fileBytes };
}
