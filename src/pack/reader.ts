/**
 * The pack reader: a validated index of expert blobs over a `GgufFile`.
 * Every blob is checked to be 4096-aligned, inside the file, after the
 * resident tensors, not overlapping another, holding gate/up/down contiguously,
 * and present exactly once; reading a blob verifies its checksum.
 *
 * @module
 */
import { EdgeMoeError } from "../errors.ts";
import { GgufFile, type GgufTensorInfo } from "../gguf/reader.ts";
import type { GgmlTypeInfo } from "../gguf/types.ts";
import {
  EXPERT_PARTS,
  EXPERT_TENSOR_RE,
  type ExpertPart,
  expertTensorName,
  PACK_ALIGNMENT,
  PACK_FORMAT_VERSION,
  PACK_KEYS,
  type PackPlan,
} from "./format.ts";

/** One matrix inside an expert blob. */
export interface BlobTensor {
  /** Tensor name, e.g. `blk.3.ffn_gate.17.weight`. */
  readonly name: string;
  /** Its GGML type. */
  readonly type: GgmlTypeInfo;
  /** Dims in GGML order. */
  readonly dims: readonly number[];
  /** Offset from the blob's start. */
  readonly offset: number;
  /** Bytes of its data. */
  readonly bytes: number;
}

/** One expert's blob: where it is, its checksum and its three tensors. */
export interface ExpertBlob {
  /** The layer index (as in tensor names). */
  readonly layer: number;
  /** The expert index within the layer. */
  readonly expert: number;
  /** Absolute file offset (a multiple of 4096). */
  readonly offset: number;
  /** Bytes from the gate tensor's start to the down tensor's end. */
  readonly length: number;
  /** XXH64 (seed 0) of the blob's bytes. */
  readonly checksum: bigint;
  /** gate, up and down. */
  readonly tensors: Readonly<Record<ExpertPart, BlobTensor>>;
}

/** Whether the GGUF file is a pack (has `edgemoe.format_version`). */
export function isPack(f: GgufFile): boolean {
  return f.has(PACK_KEYS.formatVersion);
}

/** An open, validated pack. Close it (or `using`) when done. */
export class PackFile implements Disposable {
  /** The underlying GGUF file. */
  readonly gguf: GgufFile;
  /** Layers with routed experts, ascending. */
  readonly expertLayers: readonly number[];
  /** Experts per layer. */
  readonly expertCount: number;
  /** The plan that produced this pack. */
  readonly plan: PackPlan;
  /** Tensors that are not routed experts (resident in RAM). */
  readonly resident: readonly GgufTensorInfo[];
  readonly #blobs: ReadonlyMap<number, ExpertBlob[]>;

  private constructor(gguf: GgufFile) {
    this.gguf = gguf;
    const fail = (detail: string) => new EdgeMoeError("corrupt_data", `read pack ${gguf.name}`, detail);
    const version = gguf.getU32(PACK_KEYS.formatVersion);
    if (version !== PACK_FORMAT_VERSION) {
      throw new EdgeMoeError(
        "unsupported",
        `read pack ${gguf.name}`,
        `pack format version ${version}, expected ${PACK_FORMAT_VERSION}`,
      );
    }
    if (gguf.alignment !== PACK_ALIGNMENT) {
      throw fail(`general.alignment is ${gguf.alignment}, expected ${PACK_ALIGNMENT}`);
    }
    const layers = [...gguf.getArray(PACK_KEYS.expertLayers, "u32")];
    for (let i = 1; i < layers.length; i++) {
      if (layers[i] <= layers[i - 1]) throw fail(`${PACK_KEYS.expertLayers} [${layers}] is not strictly ascending`);
    }
    const count = gguf.getU32(PACK_KEYS.expertCount);
    if (count < 1) throw fail(`${PACK_KEYS.expertCount} is 0`);
    const sums = gguf.getArray(PACK_KEYS.checksums, "u64");
    if (sums.length !== layers.length * count) {
      throw fail(
        `${PACK_KEYS.checksums} has ${sums.length} entries, expected ${layers.length} layers × ${count} experts`,
      );
    }
    this.plan = parsePlan(gguf.getString(PACK_KEYS.plan), fail);
    this.expertLayers = layers;
    this.expertCount = count;

    const layerSet = new Set(layers);
    for (const t of gguf.tensors) {
      const m = EXPERT_TENSOR_RE.exec(t.name);
      if (m && (!layerSet.has(Number(m[1])) || Number(m[3]) >= count)) {
        throw fail(`tensor "${t.name}" is an expert outside ${PACK_KEYS.expertLayers} [${layers}] × ${count} experts`);
      }
    }
    const blobs = new Map<number, ExpertBlob[]>();
    let firstBlob = Infinity;
    for (const [li, layer] of layers.entries()) {
      const list: ExpertBlob[] = [];
      for (let e = 0; e < count; e++) {
        const parts = EXPERT_PARTS.map((p) => {
          const t = gguf.tensor(expertTensorName(layer, p, e));
          if (!t) throw fail(`expert ${e} of layer ${layer} has no tensor "${expertTensorName(layer, p, e)}"`);
          return t;
        });
        const offset = parts[0].offset;
        for (let i = 1; i < 3; i++) {
          const want = Math.ceil((parts[i - 1].offset + parts[i - 1].bytes) / PACK_ALIGNMENT) * PACK_ALIGNMENT;
          if (parts[i].offset !== want) {
            throw fail(
              `expert ${e} of layer ${layer}: "${parts[i].name}" is at ${
                parts[i].offset
              }, expected ${want} (right after "${parts[i - 1].name}")`,
            );
          }
        }
        if (offset % PACK_ALIGNMENT !== 0) {
          throw fail(`expert ${e} of layer ${layer}: blob at ${offset} is not 4096-aligned`);
        }
        if (e > 0) {
          for (const [i, p] of parts.entries()) {
            const ref = list[0].tensors[EXPERT_PARTS[i]].dims;
            if (p.dims.join() !== ref.join()) {
              throw fail(`"${p.name}" has dims [${p.dims}], expert 0 of layer ${layer} has [${ref}]`);
            }
          }
        }
        firstBlob = Math.min(firstBlob, offset);
        const tensors = Object.fromEntries(parts.map((t, i) => [EXPERT_PARTS[i], {
          name: t.name,
          type: t.type,
          dims: t.dims,
          offset: t.offset - offset,
          bytes: t.bytes,
        }])) as Record<ExpertPart, BlobTensor>;
        list.push({
          layer,
          expert: e,
          offset,
          length: parts[2].offset + parts[2].bytes - offset,
          checksum: sums[li * count + e],
          tensors,
        });
      }
      blobs.set(layer, list);
    }
    const all = [...blobs.values()].flat().sort((a, b) => a.offset - b.offset);
    for (let i = 1; i < all.length; i++) {
      const p = all[i - 1];
      if (all[i].offset < p.offset + p.length) {
        throw fail(
          `blob of expert ${all[i].expert} of layer ${all[i].layer} overlaps expert ${p.expert} of layer ${p.layer}`,
        );
      }
    }
    this.resident = gguf.tensors.filter((t) => !EXPERT_TENSOR_RE.test(t.name));
    for (const t of this.resident) {
      if (t.offset + t.bytes > firstBlob) throw fail(`resident tensor "${t.name}" lies after the first expert blob`);
    }
    this.#blobs = blobs;
  }

  /**
   * Opens and validates the pack at `path`.
   *
   * @throws {EdgeMoeError} `corrupt_data` naming what is wrong, `unsupported` for another format version.
   */
  static open(path: string): PackFile {
    return PackFile.fromGguf(GgufFile.open(path));
  }

  /** Validates an open GGUF file as a pack; takes ownership of it (closes it on failure). */
  static fromGguf(gguf: GgufFile): PackFile {
    try {
      return new PackFile(gguf);
    } catch (e) {
      gguf.close();
      throw e;
    }
  }

  /**
   * The blob of expert `expert` of layer `layer`.
   *
   * @throws {EdgeMoeError} `invalid_argument` if the layer has no experts or the index is out of range.
   */
  expert(layer: number, expert: number): ExpertBlob {
    const b = this.#blobs.get(layer)?.[expert];
    if (!b) {
      throw new EdgeMoeError(
        "invalid_argument",
        `read pack ${this.gguf.name}`,
        `no expert ${expert} in layer ${layer} (expert layers [${this.expertLayers}], ${this.expertCount} experts)`,
      );
    }
    return b;
  }

  /** Every blob, layer-major. */
  blobs(): ExpertBlob[] {
    return [...this.#blobs.values()].flat();
  }

  /**
   * Reads a blob and verifies its checksum with `checksum` (XXH64, seed 0).
   *
   * @throws {EdgeMoeError} `corrupt_data` on a checksum mismatch, `io`.
   */
  readExpert(layer: number, expert: number, checksum: (bytes: Uint8Array) => bigint): Uint8Array {
    const b = this.expert(layer, expert);
    const bytes = this.gguf.readRange(b.offset, b.length);
    const got = checksum(bytes);
    if (got !== b.checksum) {
      throw new EdgeMoeError(
        "corrupt_data",
        `read pack ${this.gguf.name}`,
        `expert ${expert} of layer ${layer} (bytes [${b.offset}, ${b.offset + b.length})): checksum ${
          got.toString(16)
        }, expected ${b.checksum.toString(16)}`,
      );
    }
    return bytes;
  }

  /** Closes the file. Idempotent. */
  close(): void {
    this.gguf.close();
  }

  /** Same as `close()`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

function parsePlan(text: string, fail: (d: string) => EdgeMoeError): PackPlan {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw fail(`${PACK_KEYS.plan} is not JSON: ${(e as Error).message}`);
  }
  const p = v as PackPlan;
  if (
    typeof v !== "object" || v === null || typeof p.method !== "string" || typeof p.source !== "string" ||
    !Array.isArray(p.types)
  ) {
    throw fail(`${PACK_KEYS.plan} is not an object with method, source and types`);
  }
  return p;
}
