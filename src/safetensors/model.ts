/**
 * The safetensors weights of a Hugging Face model directory: one
 * `model.safetensors`, or shards listed by `model.safetensors.index.json`
 * (`{ "metadata": {…}, "weight_map": { "TENSOR": "SHARD.safetensors", … } }`).
 *
 * For a sharded model every shard the index names must exist, shard names must
 * be plain file names inside the directory (no path traversal), each tensor
 * must be in exactly the shard the index says, and no shard may hold a tensor
 * the index does not list.
 *
 * @module
 */
import { EdgeMoeError } from "../errors.ts";
import { isJsonObject, parseStrictJson } from "./json.ts";
import { SafetensorsFile, type SafetensorsTensor } from "./reader.ts";

/** The index file's name. */
export const SAFETENSORS_INDEX = "model.safetensors.index.json";
/** The single-file weights' name. */
export const SAFETENSORS_SINGLE = "model.safetensors";
const MAX_INDEX_BYTES = 64 * 1024 * 1024;

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** `true` for a plain file name: no directory part, not `.`/`..`, no NUL. */
function isPlainFileName(name: string): boolean {
  return name.length > 0 && name.length <= 255 && !/[/\\\0]/.test(name) && name !== "." && name !== "..";
}

/**
 * All the safetensors weights of a model directory, by tensor name, read on
 * demand from whichever shard holds each.
 */
export class SafetensorsModel {
  /** The directory. */
  readonly dir: string;
  /** The open files (one, or the shards in index order). */
  readonly files: readonly SafetensorsFile[];
  #byName: Map<string, { file: SafetensorsFile; tensor: SafetensorsTensor }>;

  private constructor(dir: string, files: SafetensorsFile[]) {
    this.dir = dir;
    this.files = files;
    this.#byName = new Map();
    for (const file of files) {
      for (const tensor of file.tensors.values()) this.#byName.set(tensor.name, { file, tensor });
    }
  }

  /**
   * Opens the weights of `dir` and validates every header (and the index).
   *
   * @throws {EdgeMoeError} `io` when no weights are found or a shard is missing,
   * `corrupt_data` for a malformed index or a tensor not where the index says.
   */
  static open(dir: string): SafetensorsModel {
    const indexPath = `${dir}/${SAFETENSORS_INDEX}`;
    if (isFile(indexPath)) return SafetensorsModel.#openSharded(dir, indexPath);
    const single = `${dir}/${SAFETENSORS_SINGLE}`;
    if (isFile(single)) return new SafetensorsModel(dir, [SafetensorsFile.open(single)]);
    throw new EdgeMoeError(
      "io",
      `open safetensors model ${dir}`,
      `found neither ${SAFETENSORS_INDEX} nor ${SAFETENSORS_SINGLE}`,
    );
  }

  static #openSharded(dir: string, indexPath: string): SafetensorsModel {
    const op = `read ${indexPath}`;
    let bytes: Uint8Array;
    try {
      const size = Deno.statSync(indexPath).size;
      if (size > MAX_INDEX_BYTES) {
        throw new EdgeMoeError("corrupt_data", op, `index is ${size} bytes, more than the limit of ${MAX_INDEX_BYTES}`);
      }
      bytes = Deno.readFileSync(indexPath);
    } catch (e) {
      if (e instanceof EdgeMoeError) throw e;
      throw new EdgeMoeError("io", op, (e as Error).message, { cause: e });
    }
    let text: string;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch (e) {
      throw new EdgeMoeError("corrupt_data", op, "index is not valid UTF-8", { cause: e });
    }
    const root = parseStrictJson(text, op);
    const weightMap = isJsonObject(root) ? root.get("weight_map") : undefined;
    if (!isJsonObject(weightMap)) {
      throw new EdgeMoeError("corrupt_data", op, 'expected an object with a "weight_map" object of tensor → shard');
    }
    const shardOf = new Map<string, string>();
    const shardNames: string[] = [];
    for (const [tensor, shard] of weightMap) {
      if (typeof shard !== "string") {
        throw new EdgeMoeError("corrupt_data", op, `weight_map[${JSON.stringify(tensor)}] must be a file name string`);
      }
      if (!isPlainFileName(shard)) {
        throw new EdgeMoeError(
          "corrupt_data",
          op,
          `weight_map[${JSON.stringify(tensor)}] = ${
            JSON.stringify(shard)
          } is not a plain file name in the model directory`,
        );
      }
      shardOf.set(tensor, shard);
      if (!shardNames.includes(shard)) shardNames.push(shard);
    }
    if (shardOf.size === 0) throw new EdgeMoeError("corrupt_data", op, "weight_map lists no tensors");
    const files: SafetensorsFile[] = [];
    try {
      for (const shard of shardNames) {
        const path = `${dir}/${shard}`;
        if (!isFile(path)) {
          throw new EdgeMoeError("io", op, `shard ${JSON.stringify(shard)} named by the index is missing (${path})`);
        }
        const file = SafetensorsFile.open(path);
        files.push(file);
        for (const name of file.tensors.keys()) {
          const want = shardOf.get(name);
          if (want === undefined) {
            throw new EdgeMoeError(
              "corrupt_data",
              op,
              `shard ${shard} holds tensor ${JSON.stringify(name)}, which the index does not list`,
            );
          }
          if (want !== shard) {
            throw new EdgeMoeError(
              "corrupt_data",
              op,
              `tensor ${JSON.stringify(name)} is in shard ${shard}, but the index says ${want}`,
            );
          }
        }
      }
      for (const [name, shard] of shardOf) {
        if (!files[shardNames.indexOf(shard)].tensors.has(name)) {
          throw new EdgeMoeError(
            "corrupt_data",
            op,
            `tensor ${JSON.stringify(name)} is listed in shard ${shard}, which does not hold it`,
          );
        }
      }
    } catch (e) {
      for (const f of files) f.close();
      throw e;
    }
    return new SafetensorsModel(dir, files);
  }

  /** Every tensor, by name. */
  get tensors(): ReadonlyMap<string, SafetensorsTensor> {
    return new Map([...this.#byName].map(([k, v]) => [k, v.tensor]));
  }

  /** The entry of tensor `name`, or `undefined`. */
  get(name: string): SafetensorsTensor | undefined {
    return this.#byName.get(name)?.tensor;
  }

  /**
   * Reads `length` bytes of tensor `name` from `offset` (default: all of it).
   *
   * @throws {EdgeMoeError} `invalid_argument` for an unknown name or range, `io` for a short read.
   */
  read(name: string, offset = 0, length?: number): Uint8Array {
    const hit = this.#byName.get(name);
    if (!hit) throw new EdgeMoeError("invalid_argument", `read ${this.dir}`, `no tensor named ${JSON.stringify(name)}`);
    return hit.file.read(name, offset, length);
  }

  /** Closes every file; idempotent. */
  close(): void {
    for (const f of this.files) f.close();
  }

  /** Closes every file. */
  [Symbol.dispose](): void {
    this.close();
  }
}
