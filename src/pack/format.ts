/**
 * The pack: an expert-major GGUF (see DESIGN.md "The pack").
 *
 * ```
 * header, metadata, tensor directory        general.alignment = 4096 (u32)
 * resident tensors                          every tensor that is not a routed expert
 * blob(L0, e0) blob(L0, e1) … blob(Ln, em)  one per MoE layer and expert, 4096-aligned:
 *   blk.L.ffn_gate.E.weight, pad, blk.L.ffn_up.E.weight, pad, blk.L.ffn_down.E.weight
 * ```
 *
 * A blob spans from its gate tensor's first byte to its down tensor's last
 * byte (the zero padding between the three included); its checksum is XXH64
 * (seed 0) of exactly those bytes. Each expert's tensors may have their own
 * types; within a layer all experts have the same dims.
 *
 * Metadata (besides the source model's):
 *
 * | key                          | type        | meaning                                          |
 * | ---------------------------- | ----------- | ------------------------------------------------ |
 * | `edgemoe.format_version`     | u32         | `PACK_FORMAT_VERSION`                            |
 * | `edgemoe.expert_layers`      | array u32   | the layers with routed experts, ascending        |
 * | `edgemoe.expert_count`       | u32         | experts per layer                                |
 * | `edgemoe.expert_checksums`   | array u64   | blob checksums, layer-major (`i·count + expert`) |
 * | `edgemoe.plan`               | string      | JSON `PackPlan`: the per-expert types and source |
 * | `edgemoe.source_bytes`       | u64         | size of the file converted (optional)            |
 * | `edgemoe.source_xxh64`       | u64         | its `sourceHash` (optional)                      |
 *
 * @module
 */

/** The version of the pack layout this code writes and reads. */
export const PACK_FORMAT_VERSION = 1;
/** The pack's `general.alignment`: blobs start on page boundaries. */
export const PACK_ALIGNMENT = 4096;

/** Metadata keys of the pack. */
export const PACK_KEYS = {
  formatVersion: "edgemoe.format_version",
  expertLayers: "edgemoe.expert_layers",
  expertCount: "edgemoe.expert_count",
  checksums: "edgemoe.expert_checksums",
  plan: "edgemoe.plan",
  sourceBytes: "edgemoe.source_bytes",
  sourceHash: "edgemoe.source_xxh64",
} as const;

/** Bytes per chunk of `edgemoe.source_xxh64`. */
export const SOURCE_HASH_CHUNK = 8 << 20;

/** The three matrices of an expert FFN. */
export const EXPERT_PARTS = ["gate", "up", "down"] as const;
/** One of `EXPERT_PARTS`. */
export type ExpertPart = (typeof EXPERT_PARTS)[number];

/** The pack's name of one expert's tensor: `blk.3.ffn_gate.17.weight`. */
export function expertTensorName(layer: number, part: ExpertPart, expert: number): string {
  return `blk.${layer}.ffn_${part}.${expert}.weight`;
}

/** Matches pack expert tensor names; groups: layer, part, expert. */
export const EXPERT_TENSOR_RE = /^blk\.(\d+)\.ffn_(gate|up|down)\.(\d+)\.weight$/;

/** The bitwidth plan that produced a pack: where it came from and each expert's types. */
export interface PackPlan {
  /** How the types were chosen, e.g. `"copy"` (types of the source kept). */
  method: string;
  /** The source file's name. */
  source: string;
  /** `types[i][e]` = [gate, up, down] type names of expert `e` of the i-th expert layer. */
  types: string[][][];
}
