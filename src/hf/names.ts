/**
 * Hugging Face tensor names → llama.cpp's canonical GGUF names, per
 * architecture, with the shape each tensor must have. The table is built from
 * the config, so a checkpoint whose tensors are missing, extra or of the wrong
 * shape is refused before anything is written.
 *
 * Conventions follow llama.cpp's convert_hf_to_gguf.py:
 * - per-expert matrices are stacked into three tensors per layer
 *   (`blk.N.ffn_{gate,up,down}_exps.weight`, experts outermost);
 * - for Mixtral (GGUF arch `llama`, interleaved RoPE) the rows of `q_proj` and
 *   `k_proj` are permuted from Hugging Face's half-split rotary layout to the
 *   interleaved one; the other architectures use NeoX RoPE and are copied;
 * - 1-D tensors (norms, biases) and the routers are stored as F32.
 *
 * @module
 */
import type { HfModelConfig } from "./config.ts";

/** One GGUF tensor to write and where its data comes from. */
export interface GgufTensorPlan {
  /** Its GGUF name. */
  readonly name: string;
  /** The Hugging Face tensors it is made of: one, or one per expert (stacked, expert 0 first). */
  readonly sources: readonly string[];
  /** The shape each source must have (PyTorch order, outermost first). */
  readonly sourceShape: readonly number[];
  /** GGUF dims (`dims[0]` is the row length): the reversed stacked shape. */
  readonly dims: readonly number[];
  /** Stored as F32 whatever the source type (llama.cpp does so for 1-D tensors and routers). */
  readonly forceF32: boolean;
  /** Head count for llama.cpp's Q/K row permutation (interleaved RoPE), if it applies. */
  readonly permuteHeads?: number;
}

/** Hugging Face tensors that carry no weights and are dropped (e.g. cached rotary frequencies). */
export function isIgnoredHfTensor(name: string): boolean {
  return name.endsWith(".rotary_emb.inv_freq");
}

/**
 * The GGUF tensors of a model with config `cfg`, in the order they are
 * written. `has(name)` says whether the checkpoint holds an optional tensor
 * (only `lm_head.weight` of a model with tied embeddings is optional).
 */
export function planTensors(cfg: HfModelConfig, has: (hfName: string) => boolean): GgufTensorPlan[] {
  const plans: GgufTensorPlan[] = [];
  const add = (name: string, hf: string, shape: number[], extra: Partial<GgufTensorPlan> = {}) => {
    plans.push({
      name,
      sources: [hf],
      sourceShape: shape,
      dims: shape.toReversed(),
      forceF32: shape.length === 1,
      ...extra,
    });
  };
  const { hiddenSize: h, numHeads, numKvHeads, headDim: hd, numExperts: nE } = cfg;
  const llama = cfg.arch === "llama";
  add("token_embd.weight", "model.embed_tokens.weight", [cfg.vocabSize, h]);
  for (let l = 0; l < cfg.numLayers; l++) {
    const p = `model.layers.${l}`;
    const b = `blk.${l}`;
    add(`${b}.attn_norm.weight`, `${p}.input_layernorm.weight`, [h]);
    add(`${b}.attn_q.weight`, `${p}.self_attn.q_proj.weight`, [numHeads * hd, h], {
      permuteHeads: llama ? numHeads : undefined,
    });
    add(`${b}.attn_k.weight`, `${p}.self_attn.k_proj.weight`, [numKvHeads * hd, h], {
      permuteHeads: llama ? numKvHeads : undefined,
    });
    add(`${b}.attn_v.weight`, `${p}.self_attn.v_proj.weight`, [numKvHeads * hd, h]);
    if (cfg.arch === "qwen2moe") {
      add(`${b}.attn_q.bias`, `${p}.self_attn.q_proj.bias`, [numHeads * hd]);
      add(`${b}.attn_k.bias`, `${p}.self_attn.k_proj.bias`, [numKvHeads * hd]);
      add(`${b}.attn_v.bias`, `${p}.self_attn.v_proj.bias`, [numKvHeads * hd]);
    }
    add(`${b}.attn_output.weight`, `${p}.self_attn.o_proj.weight`, [h, numHeads * hd]);
    if (cfg.arch === "qwen3moe") {
      add(`${b}.attn_q_norm.weight`, `${p}.self_attn.q_norm.weight`, [hd]);
      add(`${b}.attn_k_norm.weight`, `${p}.self_attn.k_norm.weight`, [hd]);
    }
    if (cfg.arch === "olmoe") {
      add(`${b}.attn_q_norm.weight`, `${p}.self_attn.q_norm.weight`, [numHeads * hd]);
      add(`${b}.attn_k_norm.weight`, `${p}.self_attn.k_norm.weight`, [numKvHeads * hd]);
    }
    add(`${b}.ffn_norm.weight`, `${p}.post_attention_layernorm.weight`, [h]);
    const moe = llama ? `${p}.block_sparse_moe` : `${p}.mlp`;
    add(`${b}.ffn_gate_inp.weight`, `${moe}.gate.weight`, [nE, h], { forceF32: true });
    const ff = cfg.expertFfnSize;
    const experts = (which: string) => Array.from({ length: nE }, (_, e) => `${moe}.experts.${e}.${which}.weight`);
    const stacked = (kind: string, which: string, shape: number[]) => {
      plans.push({
        name: `${b}.ffn_${kind}_exps.weight`,
        sources: experts(which),
        sourceShape: shape,
        dims: [...shape.toReversed(), nE],
        forceF32: false,
      });
    };
    stacked("gate", llama ? "w1" : "gate_proj", [ff, h]);
    stacked("up", llama ? "w3" : "up_proj", [ff, h]);
    stacked("down", llama ? "w2" : "down_proj", [h, ff]);
    if (cfg.arch === "qwen2moe") {
      const sf = cfg.sharedExpertFfnSize;
      add(`${b}.ffn_gate_inp_shexp.weight`, `${moe}.shared_expert_gate.weight`, [1, h], { forceF32: true });
      add(`${b}.ffn_gate_shexp.weight`, `${moe}.shared_expert.gate_proj.weight`, [sf, h]);
      add(`${b}.ffn_up_shexp.weight`, `${moe}.shared_expert.up_proj.weight`, [sf, h]);
      add(`${b}.ffn_down_shexp.weight`, `${moe}.shared_expert.down_proj.weight`, [h, sf]);
    }
  }
  add("output_norm.weight", "model.norm.weight", [h]);
  if (!cfg.tieWordEmbeddings || has("lm_head.weight")) add("output.weight", "lm_head.weight", [cfg.vocabSize, h]);
  return plans;
}

/**
 * llama.cpp's Q/K row permutation for interleaved RoPE: the rows of each head
 * (`headDim` of them) go from Hugging Face's order [x0 … x(d/2−1), y0 … y(d/2−1)]
 * to [x0, y0, x1, y1, …]. Returns, for each output row, the source row.
 */
export function ropePermutation(rows: number, heads: number): Uint32Array {
  const hd = rows / heads;
  const half = hd / 2;
  const src = new Uint32Array(rows);
  for (let head = 0; head < heads; head++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) src[head * hd + i * 2 + j] = head * hd + j * half + i;
    }
  }
  return src;
}
