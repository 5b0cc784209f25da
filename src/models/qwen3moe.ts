/**
 * Qwen3-MoE: per-head RMSNorm on queries and keys, NEOX RoPE, grouped KV
 * heads, softmax router with the top-k weights renormalised (`norm_topk_prob`).
 *
 * Weights per layer (GGUF dims, innermost first; E = experts, F = expert FFN):
 * attn_q [n_embd, n_head·head_dim], attn_k/attn_v [n_embd, n_head_kv·head_dim],
 * attn_output [n_head·head_dim, n_embd], attn_q_norm/attn_k_norm [head_dim],
 * ffn_gate_inp [n_embd, E], ffn_gate_exps/ffn_up_exps [n_embd, F, E],
 * ffn_down_exps [F, n_embd, E].
 *
 * @module
 */
import type { ArchSpec } from "./arch.ts";

/** The Qwen3-MoE spec. */
export const qwen3moe: ArchSpec = {
  names: ["qwen3moe"],
  title: "Qwen3-MoE",
  qkNorm: "head",
  rope: "neox",
  gating: "softmax_topk",
  normalizeTopK: true,
  sharedExpert: false,
};
