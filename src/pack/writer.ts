/**
 * Writes a pack (layout in format.ts): resident tensors first, then one
 * contiguous 4096-aligned blob per (layer, expert), with each blob's checksum
 * computed while streaming and patched into the metadata before the atomic
 * rename. At most one expert blob is held in memory at a time.
 *
 * @module
 */
import { EdgeMoeError } from "../errors.ts";
import type { GgufTensorSpec, GgufWriteResult } from "../gguf/writer.ts";
import { writeGguf } from "../gguf/writer.ts";
import { ggmlTypeById, type GgufValue, tensorBytes } from "../gguf/types.ts";
import {
  EXPERT_PARTS,
  type ExpertPart,
  expertTensorName,
  PACK_ALIGNMENT,
  PACK_FORMAT_VERSION,
  PACK_KEYS,
  type PackPlan,
} from "./format.ts";

/** One matrix of one expert: its type, dims (GGML order) and how to get its bytes. */
export interface ExpertTensorSource {
  /** GGML type id. */
  type: number;
  /** Dims in GGML order (`dims[0]` is the row length). */
  dims: readonly number[];
  /** Its bytes (called once, when the writer reaches this expert). */
  read(): Uint8Array | Promise<Uint8Array>;
}

/** What goes into a pack. */
export interface PackSpec {
  /** Source metadata; `general.alignment` and `edgemoe.*` keys are replaced. */
  metadata: Iterable<readonly [string, GgufValue]>;
  /** Non-expert tensors, written first. */
  resident: readonly GgufTensorSpec[];
  /** Layers with routed experts, ascending. */
  expertLayers: readonly number[];
  /** Experts per layer. */
  expertCount: number;
  /** The three matrices of expert `expert` of layer `layer`. */
  expert(layer: number, expert: number): Record<ExpertPart, ExpertTensorSource>;
  /** How the expert types were chosen (recorded as `edgemoe.plan`; its `types` are filled in here). */
  plan: Omit<PackPlan, "types">;
  /** The converted file's size and `sourceHash`, recorded as `edgemoe.source_bytes` / `edgemoe.source_xxh64`. */
  source?: { bytes: number; hash: bigint };
}

/** Options of {@linkcode writePack}. */
export interface PackWriteOptions {
  /** Replace an existing file. */
  overwrite?: boolean;
  /** The blob checksum (XXH64, seed 0): `NativeLibrary.checksum64`. */
  checksum: (bytes: Uint8Array) => bigint;
  /** Called after each expert blob is written. */
  onExpert?: (done: number, total: number) => void;
}

const OP = "write pack";

function alignUp(n: number): number {
  return Math.ceil(n / PACK_ALIGNMENT) * PACK_ALIGNMENT;
}

function byteSize(name: string, src: ExpertTensorSource): number {
  const t = ggmlTypeById(src.type);
  if (!t) throw new EdgeMoeError("unsupported", OP, `${name}: unknown GGML type id ${src.type}`);
  const n = tensorBytes(t, src.dims.reduce((a, d) => a * BigInt(d), 1n));
  if (n === undefined) {
    throw new EdgeMoeError("invalid_argument", OP, `${name}: dims [${src.dims}] do not fit ${t.name} blocks`);
  }
  return Number(n);
}

/**
 * Writes the pack described by `spec` to `path` atomically.
 *
 * @throws {EdgeMoeError} `invalid_argument` for an inconsistent spec, `io`; no file is left at `path`.
 */
export async function writePack(path: string, spec: PackSpec, opts: PackWriteOptions): Promise<GgufWriteResult> {
  const layers = spec.expertLayers;
  for (let i = 1; i < layers.length; i++) {
    if (layers[i] <= layers[i - 1]) {
      throw new EdgeMoeError("invalid_argument", OP, `expert layers [${layers}] are not ascending`);
    }
  }
  if (!Number.isSafeInteger(spec.expertCount) || spec.expertCount < 1) {
    throw new EdgeMoeError("invalid_argument", OP, `expert count ${spec.expertCount}, expected at least 1`);
  }
  const total = layers.length * spec.expertCount;
  const checksums = new BigUint64Array(total);
  const types: string[][][] = [];
  const tensors: GgufTensorSpec[] = [...spec.resident];
  let done = 0;
  for (const [li, layer] of layers.entries()) {
    const layerTypes: string[][] = [];
    types.push(layerTypes);
    for (let e = 0; e < spec.expertCount; e++) {
      const srcs = spec.expert(layer, e);
      const sizes = EXPERT_PARTS.map((p) => byteSize(expertTensorName(layer, p, e), srcs[p]));
      layerTypes.push(EXPERT_PARTS.map((p) => ggmlTypeById(srcs[p].type)!.name));
      const starts = [0, alignUp(sizes[0]), alignUp(sizes[0]) + alignUp(sizes[1])];
      let blob: Uint8Array | undefined;
      const load = async (): Promise<Uint8Array> => {
        const b = new Uint8Array(starts[2] + sizes[2]);
        for (const [i, p] of EXPERT_PARTS.entries()) {
          const bytes = await srcs[p].read();
          if (bytes.length !== sizes[i]) {
            throw new EdgeMoeError(
              "invalid_argument",
              OP,
              `${expertTensorName(layer, p, e)}: ${bytes.length} bytes, expected ${sizes[i]}`,
            );
          }
          b.set(bytes, starts[i]);
        }
        checksums[li * spec.expertCount + e] = opts.checksum(b);
        return b;
      };
      for (const [i, p] of EXPERT_PARTS.entries()) {
        tensors.push({
          name: expertTensorName(layer, p, e),
          type: srcs[p].type,
          dims: srcs[p].dims,
          data: async function* () {
            if (i === 0) blob = await load();
            yield blob!.subarray(starts[i], starts[i] + sizes[i]);
            if (i === 2) {
              blob = undefined;
              opts.onExpert?.(++done, total);
            }
          },
        });
      }
    }
  }
  const plan: PackPlan = { ...spec.plan, types };
  const metadata: [string, GgufValue][] = [];
  for (const [k, v] of spec.metadata) {
    if (k !== "general.alignment" && !k.startsWith("edgemoe.")) metadata.push([k, v]);
  }
  metadata.push(
    ["general.alignment", { type: "u32", value: PACK_ALIGNMENT }],
    [PACK_KEYS.formatVersion, { type: "u32", value: PACK_FORMAT_VERSION }],
    [PACK_KEYS.expertLayers, { type: "array", itemType: "u32", value: Uint32Array.from(layers) }],
    [PACK_KEYS.expertCount, { type: "u32", value: spec.expertCount }],
    [PACK_KEYS.checksums, { type: "array", itemType: "u64", value: new BigUint64Array(total) }],
    [PACK_KEYS.plan, { type: "string", value: JSON.stringify(plan) }],
  );
  if (spec.source) {
    metadata.push(
      [PACK_KEYS.sourceBytes, { type: "u64", value: BigInt(spec.source.bytes) }],
      [PACK_KEYS.sourceHash, { type: "u64", value: spec.source.hash }],
    );
  }
  return await writeGguf(path, metadata, tensors, {
    overwrite: opts.overwrite,
    patch: () => [[PACK_KEYS.checksums, { type: "array", itemType: "u64", value: checksums }]],
  });
}
