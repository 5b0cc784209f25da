/**
 * Qwen2-MoE: biases on the q/k/v projections, NEOX RoPE, softmax router
 * without renormalisation, and a shared expert whose output is scaled by
 * `sigmoid(ffn_gate_inp_shexp · x)` and added to the routed experts'.
 *
 * Extra weights per layer: attn_q/k/v bias, ffn_gate_shexp/ffn_up_shexp
 * [n_embd, F_shared], ffn_down_shexp [F_shared, n_embd], ffn_gate_inp_shexp [n_embd].
 *
 * @module
 */
import type { ArchSpec } from "./arch.ts";

/** The Qwen2-MoE spec. */
export const qwen2moe: ArchSpec = {
  names: ["qwen2moe"],
  title: "Qwen2-MoE",
  qkNorm: "none",
  rope: "neox",
  gating: "softmax_topk",
  normalizeTopK: false,
  sharedExpert: true,
};
