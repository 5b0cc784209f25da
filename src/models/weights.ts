/**
 * What a model graph reads: hyperparameters by GGUF key, resident tensors by
 * canonical GGUF name, and experts by (layer, id). File formats (GGUF, packs,
 * Hugging Face directories) and expert stores implement these.
 *
 * @module
 */
import { EdgeMoeError } from "../errors.ts";

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
}

/** Experts held for the caller until disposed (an expert store unpins their slots). */
export interface ExpertLease extends Disposable {
  /** The experts, in the order of the ids asked for. */
  readonly experts: readonly ExpertWeights[];
}

/** Where experts come from: RAM, or an expert store reading them from disk. */
export interface ExpertSource {
  /** How many experts can be held at once (undefined: no limit). */
  readonly capacity?: number;
  /**
   * The weights of experts `ids` of `layer`, held until the lease is disposed.
   * `whileReading`, if given, is called once the experts are pinned and their
   * reads started, before waiting for them: further reads it starts (prefetches)
   * overlap this wait and cannot evict these experts.
   */
  acquire(layer: number, ids: Uint32Array, whileReading?: () => void): ExpertLease;
  /** A hint that `ids` of `layer` will be needed soon (may start reads). */
  prefetch(layer: number, ids: Uint32Array): void;
  /**
   * Lets reads in flight progress without waiting: completed reads are reaped
   * and queued ones started. Called between pieces of compute, so prefetches
   * beyond the bound on reads in flight do not sit idle until the next wait.
   */
  poll?(): void;
}

/** One expert out of stacked `[cols, rows, n_expert]` tensors: the e-th equal byte slice. */
export function expertSlice(t: TensorData, e: number): TensorData {
  const n = t.dims[2];
  if (t.dims.length !== 3 || !(e >= 0 && e < n) || t.data.byteLength % n !== 0) {
    throw new EdgeMoeError("corrupt_data", "read expert", `tensor ${t.name} (dims [${t.dims}]) has no expert ${e}`);
  }
  const bytes = t.data.byteLength / n;
  return {
    name: `${t.name}[${e}]`,
    type: t.type,
    dims: [t.dims[0], t.dims[1]],
    data: t.data.subarray(e * bytes, (e + 1) * bytes),
  };
}

/**
 * Experts kept in RAM: either stacked (`blk.L.ffn_gate_exps.weight`, as
 * llama.cpp writes MoE models) or one tensor per expert
 * (`blk.L.ffn_gate.E.weight`, as packs and older Mixtral files do).
 */
export function residentExperts(w: ModelWeights): ExpertSource {
  const find = (layer: number, id: number, part: "gate" | "up" | "down"): TensorData => {
    const stacked = w.tensor(`blk.${layer}.ffn_${part}_exps.weight`);
    if (stacked) return expertSlice(stacked, id);
    const single = w.tensor(`blk.${layer}.ffn_${part}.${id}.weight`);
    if (!single) {
      throw new EdgeMoeError("corrupt_data", "read expert", `expert ${id} of layer ${layer} has no ${part} tensor`);
    }
    return single;
  };
  // The same views for an expert every time: the kernels' wrappers check each tensor once (ops.ts).
  const made = new Map<string, ExpertWeights>();
  const expert = (layer: number, id: number): ExpertWeights => {
    const key = `${layer}:${id}`;
    let e = made.get(key);
    if (!e) {
      e = { gate: find(layer, id, "gate"), up: find(layer, id, "up"), down: find(layer, id, "down") };
      made.set(key, e);
    }
    return e;
  };
  return {
    acquire(layer, ids, whileReading) {
      whileReading?.();
      const experts = [...ids].map((id) => expert(layer, id));
      return { experts, [Symbol.dispose]() {} };
    },
    prefetch() {},
  };
}
