/**
 * What a model graph reads: hyperparameters by GGUF key, resident tensors by
 * canonical GGUF name, and experts by (layer, id). File formats (GGUF, packs,
 * Hugging Face directories) and expert stores implement these.
 *
 * @module
 */

/** A tensor's bytes and shape. `dims` is in GGUF order: `dims[0]` is the row length. */
export interface TensorData {
  /** Canonical GGUF name, e.g. `blk.0.attn_q.weight`. */
  name: string;
  /** GGML type id (0 = F32, 1 = F16, 8 = Q8_0, 12 = Q4_K, …). */
  type: number;
  /** Dimensions, innermost first. */
  dims: readonly number[];
  /** The raw bytes, exactly `rows × rowBytes(type, dims[0])`. */
  data: Uint8Array;
}

/** The three matrices of one expert. */
export interface ExpertWeights {
  gate: TensorData;
  up: TensorData;
  down: TensorData;
}

/** Typed access to hyperparameters and resident tensors. */
export interface ModelWeights {
  /** `general.architecture`, e.g. `"qwen3moe"`. */
  readonly arch: string;
  /** A numeric metadata value (any integer or float GGUF type), or undefined if absent. */
  number(key: string): number | undefined;
  /** A boolean metadata value, or undefined if absent. */
  bool(key: string): boolean | undefined;
  /** A resident tensor, or undefined if absent. */
  tensor(name: string): TensorData | undefined;
  /** The weights of expert `id` of `layer` (from RAM, a stacked tensor or an expert store). */
  expert(layer: number, id: number): ExpertWeights;
}
