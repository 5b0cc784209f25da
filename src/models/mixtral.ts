/**
 * Mixtral: GGUF architecture `llama` with `llama.expert_count > 0`. No QK
 * norm, NORM-mode RoPE (adjacent pairs, after llama.cpp's Q/K permutation at
 * conversion), softmax router with the top-2 weights renormalised.
 *
 * @module
 */
import type { ArchSpec } from "./arch.ts";

/** The Mixtral spec. */
export const mixtral: ArchSpec = {
  names: ["llama", "mixtral"],
  title: "Mixtral",
  qkNorm: "none",
  rope: "norm",
  gating: "softmax_topk",
  normalizeTopK: true,
  sharedExpert: false,
};
