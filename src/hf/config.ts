/**
 * `config.json` of a Hugging Face model directory → typed hyperparameters of
 * the MoE architectures edgemoe supports, and the GGUF metadata llama.cpp
 * expects for each (`{arch}.block_count`, `{arch}.expert_count`, …).
 *
 * @module
 */
import { EdgeMoeError } from "../errors.ts";
import type { GgufValue } from "../gguf/types.ts";
import { isJsonObject, type JsonObject, type JsonValue, parseStrictJson } from "../safetensors/json.ts";

/** The Hugging Face architectures supported, and the GGUF architecture each converts to. */
export const HF_ARCHITECTURES = {
  MixtralForCausalLM: "llama",
  Qwen2MoeForCausalLM: "qwen2moe",
  Qwen3MoeForCausalLM: "qwen3moe",
  OlmoeForCausalLM: "olmoe",
} as const;

/** A supported Hugging Face architecture name. */
export type HfArchitecture = keyof typeof HF_ARCHITECTURES;
/** The GGUF (llama.cpp) architecture name. */
export type GgufArchitecture = (typeof HF_ARCHITECTURES)[HfArchitecture];

/** Hyperparameters of a supported MoE model. */
export interface HfModelConfig {
  /** The `architectures[0]` of config.json. */
  readonly hfArch: HfArchitecture;
  /** The llama.cpp architecture it converts to. */
  readonly arch: GgufArchitecture;
  /** `model_type` of config.json. */
  readonly modelType: string;
  /** Rows of the token embedding (`vocab_size`). */
  readonly vocabSize: number;
  /** Width of the residual stream (`hidden_size`). */
  readonly hiddenSize: number;
  /** Decoder layers (`num_hidden_layers`). */
  readonly numLayers: number;
  /** Query heads (`num_attention_heads`). */
  readonly numHeads: number;
  /** Key/value heads (`num_key_value_heads`, default: the query heads). */
  readonly numKvHeads: number;
  /** Per-head size: `head_dim` if given, else hidden / heads. */
  readonly headDim: number;
  /** Whether config.json gives `head_dim` explicitly. */
  readonly headDimExplicit: boolean;
  /** Trained context length (`max_position_embeddings`). */
  readonly contextLength: number;
  /** RMSNorm epsilon (`rms_norm_eps`). */
  readonly rmsNormEps: number;
  /** RoPE base frequency (`rope_theta`). */
  readonly ropeTheta: number;
  /** Dense FFN width (`intermediate_size`); for Mixtral and OLMoE also each expert's width. */
  readonly intermediateSize: number;
  /** Routed experts per layer. */
  readonly numExperts: number;
  /** Experts used per token (`num_experts_per_tok`). */
  readonly numExpertsPerTok: number;
  /** Each routed expert's FFN width. */
  readonly expertFfnSize: number;
  /** Shared expert FFN width (Qwen2-MoE), else 0. */
  readonly sharedExpertFfnSize: number;
  /** Whether the top-k routing weights are renormalised to sum to 1. */
  readonly normTopkProb: boolean;
  /** Whether the output head reuses the token embedding. */
  readonly tieWordEmbeddings: boolean;
  /** `bos_token_id` / `eos_token_id` of config.json, if given (a list gives its first). */
  readonly bosTokenId?: number;
  /** See `bosTokenId`. */
  readonly eosTokenId?: number;
}

/** Caps on sizes read from config.json, far above any real model, so a bad file cannot make us allocate without bound. */
const LIMITS: Readonly<Record<string, number>> = {
  vocab_size: 1 << 22,
  hidden_size: 1 << 17,
  num_hidden_layers: 1024,
  num_attention_heads: 1024,
  num_key_value_heads: 1024,
  head_dim: 4096,
  max_position_embeddings: 1 << 26,
  intermediate_size: 1 << 20,
  moe_intermediate_size: 1 << 20,
  shared_expert_intermediate_size: 1 << 20,
  num_experts: 4096,
  num_local_experts: 4096,
  num_experts_per_tok: 4096,
  decoder_sparse_step: 1024,
};

function opOf(where: string): string {
  return `read ${where}`;
}

function num(
  cfg: JsonObject,
  key: string,
  where: string,
  opts: { def?: number; int?: boolean; min?: number; max?: number },
): number {
  const v = cfg.get(key);
  if (v === undefined || v === null) {
    if (opts.def !== undefined) return opts.def;
    throw new EdgeMoeError("corrupt_data", opOf(where), `missing "${key}" (expected a number)`);
  }
  if (typeof v !== "number" || !Number.isFinite(v) || (opts.int && !Number.isSafeInteger(v))) {
    throw new EdgeMoeError(
      "corrupt_data",
      opOf(where),
      `"${key}" must be ${opts.int ? "an integer" : "a number"}, found ${JSON.stringify(v)}`,
    );
  }
  if (opts.min !== undefined && v < opts.min) {
    throw new EdgeMoeError("corrupt_data", opOf(where), `"${key}" = ${v}, expected at least ${opts.min}`);
  }
  if (opts.max !== undefined && v > opts.max) {
    throw new EdgeMoeError("corrupt_data", opOf(where), `"${key}" = ${v}, more than the limit of ${opts.max}`);
  }
  return v;
}

function bool(cfg: JsonObject, key: string, where: string, def: boolean): boolean {
  const v = cfg.get(key);
  if (v === undefined || v === null) return def;
  if (typeof v !== "boolean") {
    throw new EdgeMoeError("corrupt_data", opOf(where), `"${key}" must be true or false, found ${JSON.stringify(v)}`);
  }
  return v;
}

function optionalTokenId(cfg: JsonObject, key: string, where: string): number | undefined {
  let v: JsonValue | undefined = cfg.get(key);
  if (Array.isArray(v)) v = v[0];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
    throw new EdgeMoeError("corrupt_data", opOf(where), `"${key}" must be a token id, found ${JSON.stringify(v)}`);
  }
  return v;
}

function unsupported(where: string, detail: string): never {
  throw new EdgeMoeError("unsupported", opOf(where), detail);
}

/**
 * Parses config.json text.
 *
 * @param text the file's contents
 * @param where the path, for errors
 * @throws {EdgeMoeError} `unsupported` for another architecture (listing the
 * supported ones) or a feature llama.cpp's graph for it does not have;
 * `corrupt_data` for missing or ill-typed fields.
 */
export function parseHfConfig(text: string, where = "config.json"): HfModelConfig {
  const root = parseStrictJson(text, opOf(where));
  if (!isJsonObject(root)) throw new EdgeMoeError("corrupt_data", opOf(where), "expected a JSON object");
  const archs = root.get("architectures");
  const supported = Object.keys(HF_ARCHITECTURES).join(", ");
  if (!Array.isArray(archs) || archs.length !== 1 || typeof archs[0] !== "string") {
    return unsupported(where, `"architectures" must name one architecture; supported: ${supported}`);
  }
  const hfArch = archs[0];
  if (!Object.hasOwn(HF_ARCHITECTURES, hfArch)) {
    return unsupported(where, `architecture ${JSON.stringify(hfArch)} is not supported; supported: ${supported}`);
  }
  const a = hfArch as HfArchitecture;
  const arch = HF_ARCHITECTURES[a];
  const int = (key: string, def?: number, min = 1) => num(root, key, where, { int: true, def, min, max: LIMITS[key] });
  const hiddenSize = int("hidden_size");
  const numHeads = int("num_attention_heads");
  const numKvHeads = int("num_key_value_heads", numHeads);
  if (numHeads % numKvHeads !== 0) {
    throw new EdgeMoeError(
      "corrupt_data",
      opOf(where),
      `num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`,
    );
  }
  if (a === "OlmoeForCausalLM" && numKvHeads !== numHeads) {
    unsupported(
      where,
      `OLMoE with grouped-query attention (${numKvHeads} of ${numHeads} heads): llama.cpp's olmoe graph needs num_key_value_heads = num_attention_heads`,
    );
  }
  const headDimExplicit = root.get("head_dim") !== undefined && root.get("head_dim") !== null;
  if (!headDimExplicit && hiddenSize % numHeads !== 0) {
    throw new EdgeMoeError(
      "corrupt_data",
      opOf(where),
      `hidden_size ${hiddenSize} is not a multiple of num_attention_heads ${numHeads} and head_dim is not given`,
    );
  }
  const headDim = int("head_dim", hiddenSize / numHeads);
  if (headDim % 2 !== 0) {
    throw new EdgeMoeError("corrupt_data", opOf(where), `head_dim ${headDim} must be even for rotary embeddings`);
  }
  const ropeParams = root.get("rope_parameters");
  const ropeTheta = num(isJsonObject(ropeParams) ? ropeParams : root, "rope_theta", where, {
    def: a === "MixtralForCausalLM" ? 1e6 : 10000,
    min: Number.MIN_VALUE,
  });
  const scaling = root.get("rope_scaling");
  const ropeType = isJsonObject(ropeParams) ? ropeParams.get("rope_type") : undefined;
  if ((scaling !== undefined && scaling !== null) || (ropeType !== undefined && ropeType !== "default")) {
    unsupported(where, "rope scaling is not supported yet (rope_scaling / rope_parameters.rope_type must be default)");
  }
  if (bool(root, "use_sliding_window", where, false)) unsupported(where, "sliding-window attention is not supported");
  const clip = root.get("clip_qkv");
  if (clip !== undefined && clip !== null) unsupported(where, `clip_qkv = ${JSON.stringify(clip)} is not supported`);
  const sparseStep = int("decoder_sparse_step", 1);
  const mlpOnly = root.get("mlp_only_layers");
  if (sparseStep !== 1 || (Array.isArray(mlpOnly) && mlpOnly.length > 0)) {
    unsupported(
      where,
      "models with dense (non-MoE) layers are not supported (decoder_sparse_step 1, no mlp_only_layers)",
    );
  }
  const intermediateSize = int("intermediate_size", a === "Qwen3MoeForCausalLM" ? 0 : undefined, 0);
  const numExperts = int(a === "MixtralForCausalLM" ? "num_local_experts" : "num_experts");
  const numExpertsPerTok = int("num_experts_per_tok");
  if (numExpertsPerTok > numExperts) {
    throw new EdgeMoeError(
      "corrupt_data",
      opOf(where),
      `num_experts_per_tok ${numExpertsPerTok} exceeds the ${numExperts} experts`,
    );
  }
  const usesMoeSize = a === "Qwen2MoeForCausalLM" || a === "Qwen3MoeForCausalLM";
  const expertFfnSize = usesMoeSize ? int("moe_intermediate_size") : intermediateSize;
  const sharedExpertFfnSize = a === "Qwen2MoeForCausalLM" ? int("shared_expert_intermediate_size") : 0;
  // llama.cpp's graphs hard-code the renormalisation: Mixtral and Qwen3-MoE renormalise, Qwen2-MoE and OLMoE do not.
  const normDefault = a === "MixtralForCausalLM" || a === "Qwen3MoeForCausalLM";
  const normTopkProb = a === "MixtralForCausalLM" ? true : bool(root, "norm_topk_prob", where, normDefault);
  if (normTopkProb !== normDefault) {
    unsupported(where, `norm_topk_prob = ${normTopkProb} for ${a}: llama.cpp's ${arch} graph assumes ${normDefault}`);
  }
  return {
    hfArch: a,
    arch,
    modelType: typeof root.get("model_type") === "string" ? root.get("model_type") as string : "",
    vocabSize: int("vocab_size"),
    hiddenSize,
    numLayers: int("num_hidden_layers"),
    numHeads,
    numKvHeads,
    headDim,
    headDimExplicit,
    contextLength: int("max_position_embeddings", 4096),
    rmsNormEps: num(root, "rms_norm_eps", where, { def: 1e-6, min: 0 }),
    ropeTheta,
    intermediateSize,
    numExperts,
    numExpertsPerTok,
    expertFfnSize,
    sharedExpertFfnSize,
    normTopkProb,
    tieWordEmbeddings: bool(root, "tie_word_embeddings", where, false),
    bosTokenId: optionalTokenId(root, "bos_token_id", where),
    eosTokenId: optionalTokenId(root, "eos_token_id", where),
  };
}

/**
 * The GGUF architecture metadata llama.cpp reads for `cfg`, as its
 * convert_hf_to_gguf.py writes it (`general.architecture` first).
 */
export function archMetadata(cfg: HfModelConfig): [string, GgufValue][] {
  const a = cfg.arch;
  const u32 = (value: number): GgufValue => ({ type: "u32", value });
  const f32 = (value: number): GgufValue => ({ type: "f32", value });
  const kv: [string, GgufValue][] = [
    ["general.architecture", { type: "string", value: a }],
    [`${a}.context_length`, u32(cfg.contextLength)],
    [`${a}.embedding_length`, u32(cfg.hiddenSize)],
    [`${a}.block_count`, u32(cfg.numLayers)],
    [`${a}.attention.head_count`, u32(cfg.numHeads)],
    [`${a}.attention.head_count_kv`, u32(cfg.numKvHeads)],
    [`${a}.rope.freq_base`, f32(cfg.ropeTheta)],
    // llama.cpp's converter writes OLMoE's epsilon as 1e-5 whatever config.json says.
    [`${a}.attention.layer_norm_rms_epsilon`, f32(a === "olmoe" ? 1e-5 : cfg.rmsNormEps)],
    [`${a}.expert_count`, u32(cfg.numExperts)],
    [`${a}.expert_used_count`, u32(cfg.numExpertsPerTok)],
  ];
  if (cfg.intermediateSize > 0) kv.push([`${a}.feed_forward_length`, u32(cfg.intermediateSize)]);
  if (a === "qwen2moe" || a === "qwen3moe") kv.push([`${a}.expert_feed_forward_length`, u32(cfg.expertFfnSize)]);
  if (a === "qwen2moe") kv.push([`${a}.expert_shared_feed_forward_length`, u32(cfg.sharedExpertFfnSize)]);
  if (cfg.headDimExplicit) {
    kv.push([`${a}.attention.key_length`, u32(cfg.headDim)], [`${a}.attention.value_length`, u32(cfg.headDim)]);
  }
  if (a === "llama") {
    kv.push([`${a}.vocab_size`, u32(cfg.vocabSize)], [`${a}.rope.dimension_count`, u32(cfg.headDim)]);
  }
  return kv;
}
