/**
 * `ModelWeights` over a GGUF file: metadata by key, tensors read on first use
 * and kept in RAM.
 *
 * @module
 */
import type { GgufFile } from "../gguf/mod.ts";
import type { ModelWeights, TensorData } from "./weights.ts";

/**
 * Weights of an opened GGUF file (the caller keeps ownership of `file`).
 * `allocate(n)`, if given, makes the buffer each tensor is read into (e.g.
 * `NativeLibrary.allocateWeights`, for huge pages).
 */
export function ggufWeights(file: GgufFile, allocate?: (bytes: number) => Uint8Array): ModelWeights {
  const cache = new Map<string, TensorData>();
  const arch = file.getString("general.architecture");
  return {
    arch,
    number(key) {
      const v = file.get(key);
      if (v === undefined) return undefined;
      if (typeof v.value === "number") return v.value;
      if (typeof v.value === "bigint") return Number(v.value);
      return undefined;
    },
    bool(key) {
      const v = file.get(key);
      return v?.type === "bool" ? v.value : undefined;
    },
    tensor(name) {
      const hit = cache.get(name);
      if (hit) return hit;
      const info = file.tensor(name);
      if (!info) return undefined;
      const t: TensorData = { name, type: info.type.id, dims: info.dims, data: file.readTensor(name, allocate) };
      cache.set(name, t);
      return t;
    },
  };
}
