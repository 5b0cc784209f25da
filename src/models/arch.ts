/**
 * What distinguishes one MoE architecture from another in the shared graph
 * (src/models/model.ts), and the table from GGUF architecture names to specs.
 * Each architecture's spec lives in its own file.
 *
 * @module
 */
import { EdgeMoeError } from "../errors.ts";
import type { RouterOptions } from "../router/router.ts";
import { mixtral } from "./mixtral.ts";
import { olmoe } from "./olmoe.ts";
import { qwen2moe } from "./qwen2moe.ts";
import { qwen3moe } from "./qwen3moe.ts";

/** The per-architecture choices of the shared MoE transformer graph. */
export interface ArchSpec {
  /** `general.architecture` value(s) this spec runs. */
  names: readonly string[];
  /** Human name for messages. */
  title: string;
  /**
   * RMSNorm on queries and keys after projection: `"head"` per head with a
   * `[headDim]` weight (Qwen3-MoE), `"full"` over the whole projection (OLMoE).
   */
  qkNorm: "none" | "head" | "full";
  /** RoPE pairing: `"neox"` (i, i+d/2) or `"norm"` (2i, 2i+1). */
  rope: "neox" | "norm";
  /** Router gating. */
  gating: RouterOptions["gating"];
  /** Renormalise the top-k weights, unless the file says otherwise (`{arch}.expert_weights_norm`). */
  normalizeTopK: boolean;
  /** Model has a shared expert gated by `sigmoid(ffn_gate_inp_shexp · x)` (Qwen2-MoE). */
  sharedExpert: boolean;
}

const SPECS: readonly ArchSpec[] = [qwen3moe, qwen2moe, olmoe, mixtral];

/** Names of every supported architecture. */
export const SUPPORTED_ARCHS: readonly string[] = SPECS.flatMap((s) => s.names);

/**
 * The spec for a GGUF architecture name.
 *
 * @throws {EdgeMoeError} `unsupported`, listing the supported names.
 */
export function archSpec(name: string): ArchSpec {
  const spec = SPECS.find((s) => s.names.includes(name));
  if (!spec) {
    throw new EdgeMoeError(
      "unsupported",
      "load model",
      `architecture "${name}" is not supported; supported: ${SUPPORTED_ARCHS.join(", ")}`,
    );
  }
  return spec;
}
