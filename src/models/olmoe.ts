/**
 * OLMoE: RMSNorm over the whole query and key projections (attn_q_norm
 * [n_head·head_dim], attn_k_norm [n_head_kv·head_dim]) before RoPE (NEOX),
 * softmax router without renormalisation.
 *
 * @module
 */
import type { ArchSpec } from "./arch.ts";

/** The OLMoE spec. */
export const olmoe: ArchSpec = {
  names: ["olmoe"],
  title: "OLMoE",
  qkNorm: "full",
  rope: "neox",
  gating: "softmax_topk",
  normalizeTopK: false,
  sharedExpert: false,
};
