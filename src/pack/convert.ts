/**
 * Plain GGUF → pack. A llama.cpp MoE GGUF stacks each layer's experts in
 * three tensors, `blk.L.ffn_{gate,up,down}_exps.weight`, with dims
 * `[cols, rows, n_expert]` (expert-major in memory, so expert `e` is the byte
 * slice `[e·size, (e+1)·size)`). Each slice becomes `blk.L.ffn_{part}.E.weight`
 * in its expert's blob, with the source type kept; every other tensor (shared
 * experts, routers, attention, norms, embeddings) is copied as resident.
 *
 * @module
 */
import { EdgeMoeError } from "../errors.ts";
import { typeForRows } from "../gguf/types.ts";
import { GgufFile, type GgufTensorInfo } from "../gguf/reader.ts";
import type { GgufTensorSpec, GgufWriteResult } from "../gguf/writer.ts";
import { EXPERT_PARTS, type ExpertPart, SOURCE_HASH_CHUNK } from "./format.ts";
import { isPack } from "./reader.ts";
import { type ExpertTensorSource, writePack } from "./writer.ts";

/** Matches llama.cpp's stacked expert tensors; groups: layer, part. */
const STACKED_RE = /^blk\.(\d+)\.ffn_(gate|up|down)_exps\.weight$/;

/**
 * The identity of a whole file, computed with the one-shot blob checksum: XXH64
 * (seed 0) of the little-endian u64 XXH64s of its consecutive 8 MiB chunks
 * (the last one shorter). One sequential read of the file.
 */
export function sourceHash(f: GgufFile, checksum: (bytes: Uint8Array) => bigint): bigint {
  const sums = new BigUint64Array(Math.ceil(f.size / SOURCE_HASH_CHUNK));
  for (let i = 0; i < sums.length; i++) {
    const at = i * SOURCE_HASH_CHUNK;
    sums[i] = checksum(f.readRange(at, Math.min(SOURCE_HASH_CHUNK, f.size - at)));
  }
  return checksum(new Uint8Array(sums.buffer));
}

/** Options of {@linkcode convertGgufToPack}. */
export interface ConvertOptions {
  /** Replace an existing output file. */
  overwrite?: boolean;
  /** The blob checksum (XXH64, seed 0): `NativeLibrary.checksum64`. */
  checksum: (bytes: Uint8Array) => bigint;
  /** Called after each expert blob is written. */
  onExpert?: (done: number, total: number) => void;
  /**
   * Per-expert types (`types[i][e]` for the i-th expert layer, expert `e`;
   * all three matrices, each with llama.cpp's fallback type when its rows do
   * not fill the type's blocks, see `typeForRows`) and how they were chosen;
   * matrices whose type differs from the source's are converted with `transcode`.
   */
  plan?: { method: string; types: readonly (readonly string[])[]; transcode: Transcode };
  /** The source recorded in the pack's plan (default: the input's file name). */
  source?: string;
}

/** Converts `n` elements of GGML type id `from` to type `to` (e.g. dequantize, then quantize natively). */
export type Transcode = (bytes: Uint8Array, from: number, to: string, n: number) => Uint8Array;

/**
 * Converts the plain GGUF at `input` into a pack at `output`, atomically.
 *
 * @throws {EdgeMoeError} `invalid_argument` if the input is already a pack or
 *   has no stacked experts, `corrupt_data` for inconsistent expert tensors, `io`.
 */
export async function convertGgufToPack(input: string, output: string, opts: ConvertOptions): Promise<GgufWriteResult> {
  const op = `convert ${input}`;
  using src = GgufFile.open(input);
  if (isPack(src)) throw new EdgeMoeError("invalid_argument", op, "the input is already a pack");
  const stacked = new Map<number, Partial<Record<ExpertPart, GgufTensorInfo>>>();
  const resident: GgufTensorSpec[] = [];
  for (const t of src.tensors) {
    const m = STACKED_RE.exec(t.name);
    if (m) {
      const layer = Number(m[1]);
      if (!stacked.has(layer)) stacked.set(layer, {});
      stacked.get(layer)![m[2] as ExpertPart] = t;
    } else {
      resident.push({ name: t.name, type: t.type.id, dims: t.dims, data: () => src.chunks(t.offset, t.bytes) });
    }
  }
  if (stacked.size === 0) {
    throw new EdgeMoeError("invalid_argument", op, "no stacked expert tensors (blk.N.ffn_{gate,up,down}_exps.weight)");
  }
  const layers = [...stacked.keys()].sort((a, b) => a - b);
  let count = 0;
  for (const layer of layers) {
    for (const p of EXPERT_PARTS) {
      const t = stacked.get(layer)![p];
      if (!t) throw new EdgeMoeError("corrupt_data", op, `layer ${layer} has no blk.${layer}.ffn_${p}_exps.weight`);
      if (t.dims.length !== 3) {
        throw new EdgeMoeError("corrupt_data", op, `${t.name} has dims [${t.dims}], expected [cols, rows, n_expert]`);
      }
      count ||= t.dims[2];
      if (t.dims[2] !== count) {
        throw new EdgeMoeError("corrupt_data", op, `${t.name} has ${t.dims[2]} experts, expected ${count}`);
      }
    }
  }
  const arch = src.has("general.architecture") ? src.getString("general.architecture") : "";
  const declared = `${arch}.expert_count`;
  if (src.has(declared) && src.getInt(declared) !== count) {
    throw new EdgeMoeError(
      "corrupt_data",
      op,
      `${declared} is ${src.getInt(declared)}, but the tensors hold ${count} experts`,
    );
  }
  const plan = opts.plan;
  if (plan) {
    if (plan.types.length !== layers.length || plan.types.some((row) => row.length !== count)) {
      throw new EdgeMoeError(
        "invalid_argument",
        op,
        `the plan has types for ${plan.types.length} layers × [${
          plan.types.map((r) => r.length)
        }] experts, the model has ${layers.length} × ${count}`,
      );
    }
    plan.types.forEach((row, i) =>
      row.forEach((name, e) => {
        for (const p of EXPERT_PARTS) {
          const t = stacked.get(layers[i])![p]!;
          if (typeForRows(name, t.dims[0]) === undefined) {
            throw new EdgeMoeError(
              "invalid_argument",
              op,
              `the plan gives expert ${e} of layer ${layers[i]} type ${name}, which cannot hold ${t.name}'s rows of ${
                t.dims[0]
              }`,
            );
          }
        }
      })
    );
  }
  const expert = (layer: number, e: number): Record<ExpertPart, ExpertTensorSource> => {
    const slice = (t: GgufTensorInfo): ExpertTensorSource => {
      const size = t.bytes / count;
      const read = () => src.readRange(t.offset + e * size, size);
      const dims = t.dims.slice(0, 2);
      const want = plan ? typeForRows(plan.types[layers.indexOf(layer)][e], dims[0])! : t.type;
      if (want.id === t.type.id) return { type: t.type.id, dims, read };
      return { type: want.id, dims, read: () => plan!.transcode(read(), t.type.id, want.name, dims[0] * dims[1]) };
    };
    const s = stacked.get(layer)!;
    return { gate: slice(s.gate!), up: slice(s.up!), down: slice(s.down!) };
  };
  return await writePack(output, {
    metadata: src.metadata,
    resident,
    expertLayers: layers,
    expertCount: count,
    expert,
    plan: { method: plan?.method ?? "copy", source: opts.source ?? input.slice(input.lastIndexOf("/") + 1) },
    source: { bytes: src.size, hash: sourceHash(src, opts.checksum) },
  }, opts);
}
