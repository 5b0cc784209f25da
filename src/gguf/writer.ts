/**
 * The GGUF writer: streams tensor data to disk (it never holds all of it),
 * aligns every tensor to `general.alignment`, writes metadata of every GGUF
 * value type, and is atomic: it writes `PATH.partial`, fsyncs it, renames it
 * to `PATH` and fsyncs the directory. On any error the `.partial` file is
 * removed and `PATH` is left as it was.
 *
 * The layout written is the one documented at the top of reader.ts (version 3,
 * little-endian).
 *
 * @module
 */
import { EdgeMoeError } from "../errors.ts";
import { encodeValue, GgufEncoder } from "./encode.ts";
import { ggmlTypeById, type GgmlTypeInfo, type GgufValue, tensorBytes } from "./types.ts";
import { checkAlignment, DEFAULT_ALIGNMENT, MAX_DIMS, MAX_TENSOR_NAME_BYTES } from "./reader.ts";

/** Where a tensor's bytes come from: all at once, or as a stream of chunks. */
export type TensorData = Uint8Array | (() => AsyncIterable<Uint8Array>);

/** One tensor to write. */
export interface GgufTensorSpec {
  /** Unique name, at most 63 bytes of UTF-8 (llama.cpp's `GGML_MAX_NAME` - 1). */
  name: string;
  /** GGML type id (see `GgmlType`). */
  type: number;
  /**
   * Dimensions in GGML order: `dims[0]` is the row length (fastest varying),
   * as stored in the file. A numpy array of shape `[rows, cols]` has
   * `dims = [cols, rows]`. 1 to 4 entries, each > 0.
   */
  dims: readonly number[];
  /** The bytes, exactly `tensorBytes(type, product(dims))` of them. */
  data: TensorData;
}

/** Options of {@linkcode writeGguf}. */
export interface GgufWriteOptions {
  /** Replace an existing file at the path (default: refuse with `invalid_argument`). */
  overwrite?: boolean;
  /**
   * Called after all tensor data is written and before the file is synced:
   * returns new values for metadata keys already written, each of the same
   * type and encoded size as the placeholder written first (e.g. checksums
   * computed while streaming the data).
   */
  patch?: () => Iterable<readonly [string, GgufValue]>;
  /** Called after each tensor is written, with its index and name (for progress). */
  onTensor?: (index: number, name: string) => void;
}

/** Where everything landed in the written file. Every tensor, the last too, is padded to the alignment. */
export interface GgufWriteResult {
  /** Absolute offset of the data section. */
  dataOffset: number;
  /** Absolute offset and size of each tensor's data, in the order given. */
  tensors: { name: string; offset: number; bytes: number }[];
  /** Total file size in bytes. */
  fileBytes: number;
}

interface Planned {
  spec: GgufTensorSpec;
  type: GgmlTypeInfo;
  bytes: number;
  rel: number;
}

const OP = "write gguf";

function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

function planTensors(tensors: readonly GgufTensorSpec[], alignment: number): Planned[] {
  const names = new Set<string>();
  const utf8 = new TextEncoder();
  let rel = 0;
  return tensors.map((spec) => {
    const where = `tensor "${spec.name}"`;
    if (names.has(spec.name)) throw new EdgeMoeError("invalid_argument", OP, `${where} is given twice`);
    names.add(spec.name);
    const nameBytes = utf8.encode(spec.name).length;
    if (nameBytes === 0 || nameBytes > MAX_TENSOR_NAME_BYTES) {
      throw new EdgeMoeError(
        "invalid_argument",
        OP,
        `${where}: name is ${nameBytes} bytes, expected 1 to ${MAX_TENSOR_NAME_BYTES}`,
      );
    }
    const type = ggmlTypeById(spec.type);
    if (!type) throw new EdgeMoeError("unsupported", OP, `${where}: unknown GGML type id ${spec.type}`);
    if (spec.dims.length < 1 || spec.dims.length > MAX_DIMS) {
      throw new EdgeMoeError("invalid_argument", OP, `${where}: ${spec.dims.length} dims, expected 1 to ${MAX_DIMS}`);
    }
    let elems = 1n;
    for (const d of spec.dims) {
      if (!Number.isSafeInteger(d) || d <= 0) {
        throw new EdgeMoeError("invalid_argument", OP, `${where}: dims [${spec.dims}], expected positive integers`);
      }
      elems *= BigInt(d);
    }
    if (spec.dims[0] % type.blockElems !== 0) {
      throw new EdgeMoeError(
        "invalid_argument",
        OP,
        `${where}: row length ${spec.dims[0]} is not a multiple of the ${type.name} block size ${type.blockElems}`,
      );
    }
    const bytes = tensorBytes(type, elems)!;
    if (bytes > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new EdgeMoeError("invalid_argument", OP, `${where}: ${bytes} bytes is too large`);
    }
    if (spec.data instanceof Uint8Array && spec.data.length !== Number(bytes)) {
      throw new EdgeMoeError(
        "invalid_argument",
        OP,
        `${where}: data has ${spec.data.length} bytes, expected ${bytes} (${type.name} [${spec.dims}])`,
      );
    }
    const p = { spec, type, bytes: Number(bytes), rel };
    rel = alignUp(rel + p.bytes, alignment);
    return p;
  });
}

function alignmentOf(metadata: ReadonlyMap<string, GgufValue>): number {
  const v = metadata.get("general.alignment");
  if (v === undefined) return DEFAULT_ALIGNMENT;
  if (v.type !== "u32") {
    throw new EdgeMoeError("invalid_argument", OP, `metadata "general.alignment" must be u32, got ${v.type}`);
  }
  checkAlignment(v.value, (detail) => new EdgeMoeError("invalid_argument", OP, detail));
  return v.value;
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) done += await file.write(bytes.subarray(done));
}

async function writeTensorData(file: Deno.FsFile, p: Planned): Promise<void> {
  const data = p.spec.data;
  if (data instanceof Uint8Array) return await writeAll(file, data);
  let written = 0;
  for await (const chunk of data()) {
    if (written + chunk.length > p.bytes) {
      throw new EdgeMoeError("invalid_argument", OP, `tensor "${p.spec.name}": data is longer than ${p.bytes} bytes`);
    }
    await writeAll(file, chunk);
    written += chunk.length;
  }
  if (written !== p.bytes) {
    throw new EdgeMoeError(
      "invalid_argument",
      OP,
      `tensor "${p.spec.name}": data has ${written} bytes, expected ${p.bytes}`,
    );
  }
}

function dirOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i < 0 ? "." : i === 0 ? "/" : path.slice(0, i);
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/**
 * Writes a GGUF v3 file at `path`, atomically.
 *
 * @param path the final file name; `path + ".partial"` is used while writing
 * @param metadata key/value pairs in the order they are written; set
 *   `general.alignment` (u32, a power of two) to align tensors to more than 32 bytes
 * @param tensors the tensors, written in this order
 * @throws {EdgeMoeError} `invalid_argument` for a bad spec or an existing file
 *   without `overwrite`, `io` when writing fails; the `.partial` file is removed.
 */
export async function writeGguf(
  path: string,
  metadata: Iterable<readonly [string, GgufValue]>,
  tensors: readonly GgufTensorSpec[],
  opts: GgufWriteOptions = {},
): Promise<GgufWriteResult> {
  const meta = new Map<string, GgufValue>();
  for (const [k, v] of metadata) {
    if (meta.has(k)) throw new EdgeMoeError("invalid_argument", OP, `metadata key "${k}" is given twice`);
    meta.set(k, v);
  }
  const alignment = alignmentOf(meta);
  const planned = planTensors(tensors, alignment);

  const enc = new GgufEncoder();
  enc.bytes(new TextEncoder().encode("GGUF"));
  enc.u32(3);
  enc.u64(BigInt(planned.length));
  enc.u64(BigInt(meta.size));
  const valueAt = new Map<string, { offset: number; length: number; type: GgufValue }>();
  for (const [k, v] of meta) {
    enc.string(k);
    const start = enc.length;
    encodeValue(enc, v, `metadata key "${k}"`);
    valueAt.set(k, { offset: start, length: enc.length - start, type: v });
  }
  for (const p of planned) {
    enc.string(p.spec.name);
    enc.u32(p.spec.dims.length);
    for (const d of p.spec.dims) enc.u64(BigInt(d));
    enc.u32(p.type.id);
    enc.u64(BigInt(p.rel));
  }
  const dataOffset = alignUp(enc.length, alignment);
  enc.bytes(new Uint8Array(dataOffset - enc.length));
  const header = enc.finish();

  if (!opts.overwrite && await exists(path)) {
    throw new EdgeMoeError("invalid_argument", OP, `${path} exists (pass overwrite / --force to replace it)`);
  }
  const partial = `${path}.partial`;
  let file: Deno.FsFile | undefined;
  try {
    file = await Deno.open(partial, { write: true, create: true, truncate: true });
    await writeAll(file, header);
    for (const [i, p] of planned.entries()) {
      await writeTensorData(file, p);
      await writeAll(file, new Uint8Array(alignUp(p.bytes, alignment) - p.bytes));
      opts.onTensor?.(i, p.spec.name);
    }
    for (const [k, v] of opts.patch?.() ?? []) {
      const at = valueAt.get(k);
      if (!at) throw new EdgeMoeError("invalid_argument", OP, `patch of metadata key "${k}", which was not written`);
      const pe = new GgufEncoder();
      encodeValue(pe, v, `patch of metadata key "${k}"`);
      const bytes = pe.finish();
      if (bytes.length !== at.length || v.type !== at.type.type) {
        throw new EdgeMoeError(
          "invalid_argument",
          OP,
          `patch of metadata key "${k}": ${v.type} of ${bytes.length} bytes, expected ${at.type.type} of ${at.length}`,
        );
      }
      await file.seek(at.offset, Deno.SeekMode.Start);
      await writeAll(file, bytes);
    }
    await file.sync();
    file.close();
    file = undefined;
    await Deno.rename(partial, path);
  } catch (e) {
    file?.close();
    await Deno.remove(partial).catch(() => {});
    if (e instanceof EdgeMoeError) throw e;
    throw new EdgeMoeError("io", OP, `writing ${path}: ${(e as Error).message}`, { cause: e });
  }
  const dir = await Deno.open(dirOf(path), { read: true });
  try {
    await dir.sync();
  } finally {
    dir.close();
  }
  return {
    dataOffset,
    tensors: planned.map((p) => ({ name: p.spec.name, offset: dataOffset + p.rel, bytes: p.bytes })),
    fileBytes: dataOffset + (planned.length ? alignUp(planned.at(-1)!.rel + planned.at(-1)!.bytes, alignment) : 0),
  };
}
