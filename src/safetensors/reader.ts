/**
 * The safetensors reader. A file is:
 *
 * ```
 * u64 LE   N                  header length in bytes (≤ 100 MB here, ≤ file size − 8)
 * N bytes  JSON header        { "NAME": { "dtype": "F16", "shape": [d0, …], "data_offsets": [begin, end] }, …,
 *                               "__metadata__": { "key": "value", … } }   (may end with spaces)
 * …        data               tensors' bytes, row-major little-endian; offsets are relative to here
 * ```
 *
 * Everything in the header is checked before use: known dtype, non-negative
 * integer dims whose product does not overflow, `end − begin` equal to the
 * element count times the dtype size, and the tensors — sorted by offset —
 * tiling the data section exactly (no hole, no overlap, no trailing byte), as
 * the safetensors reference implementation requires. Duplicate keys are
 * refused. Tensor bytes are read on demand; the file is never read whole.
 *
 * @module
 */
import { EdgeMoeError } from "../errors.ts";
import { isJsonObject, type JsonValue, parseStrictJson } from "./json.ts";

/** The element types this reader accepts, with their sizes in bytes. */
export const SAFETENSORS_DTYPE_BYTES = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
} as const;

/** A safetensors element type. */
export type SafetensorsDtype = keyof typeof SAFETENSORS_DTYPE_BYTES;

/** The largest header accepted, in bytes (the reference implementation's limit). */
export const SAFETENSORS_MAX_HEADER_BYTES = 100_000_000;
const MAX_RANK = 16;

/** One tensor's entry in the header. */
export interface SafetensorsTensor {
  /** Its name in the header. */
  readonly name: string;
  /** Its element type. */
  readonly dtype: SafetensorsDtype;
  /** Its dims, outermost first (row-major). */
  readonly shape: readonly number[];
  /** Product of the dims. */
  readonly elements: number;
  /** Offset of its first byte from the start of the file. */
  readonly fileOffset: number;
  /** Its size in bytes. */
  readonly byteLength: number;
}

/** A validated header. */
export interface SafetensorsHeader {
  /** Tensors by name, in the header's key order. */
  readonly tensors: ReadonlyMap<string, SafetensorsTensor>;
  /** The `__metadata__` strings (empty when absent). */
  readonly metadata: ReadonlyMap<string, string>;
  /** Offset of the data section from the start of the file (8 + header length). */
  readonly dataOffset: number;
  /** Size of the data section in bytes. */
  readonly dataBytes: number;
}

function isDtype(s: string): s is SafetensorsDtype {
  return Object.hasOwn(SAFETENSORS_DTYPE_BYTES, s);
}

function describe(v: JsonValue | undefined): string {
  if (v === undefined) return "nothing";
  if (isJsonObject(v)) return "an object";
  if (Array.isArray(v)) return "an array";
  return `${typeof v} ${JSON.stringify(v).slice(0, 40)}`;
}

/**
 * Reads the header length: the first 8 bytes of a file of `fileSize` bytes.
 *
 * @throws {EdgeMoeError} `corrupt_data` when the file is shorter than 8 bytes or
 * the length is 0, over {@linkcode SAFETENSORS_MAX_HEADER_BYTES} or past the end.
 */
export function parseSafetensorsPrefix(prefix: Uint8Array, fileSize: number, where: string): number {
  const op = `read safetensors ${where}`;
  if (fileSize < 8 || prefix.length < 8) {
    throw new EdgeMoeError(
      "corrupt_data",
      op,
      `file has ${fileSize} bytes, expected at least the 8-byte header length`,
    );
  }
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n === 0n) throw new EdgeMoeError("corrupt_data", op, "header length is 0, expected a JSON header");
  if (n > BigInt(SAFETENSORS_MAX_HEADER_BYTES)) {
    throw new EdgeMoeError(
      "corrupt_data",
      op,
      `header length ${n} exceeds the limit of ${SAFETENSORS_MAX_HEADER_BYTES} bytes`,
    );
  }
  if (n > BigInt(fileSize - 8)) {
    throw new EdgeMoeError(
      "corrupt_data",
      op,
      `header length ${n} runs past the end of the file (${fileSize} bytes, so at most ${fileSize - 8})`,
    );
  }
  return Number(n);
}

/**
 * Parses and validates a header (the N bytes after the length) of a file of
 * `fileSize` bytes.
 *
 * @param header the header bytes
 * @param fileSize the whole file's size
 * @param where the file, for errors
 * @throws {EdgeMoeError} `corrupt_data` for a malformed header, `unsupported` for an unknown dtype.
 */
export function parseSafetensorsHeader(header: Uint8Array, fileSize: number, where: string): SafetensorsHeader {
  const op = `read safetensors ${where}`;
  const corrupt = (detail: string): never => {
    throw new EdgeMoeError("corrupt_data", op, detail);
  };
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(header);
  } catch (e) {
    throw new EdgeMoeError("corrupt_data", op, "header is not valid UTF-8", { cause: e });
  }
  if (!text.startsWith("{")) corrupt(`header must start with "{", found ${JSON.stringify(text.slice(0, 12))}`);
  const root = parseStrictJson(text, op);
  if (!isJsonObject(root)) return corrupt("header is not a JSON object");
  const dataOffset = 8 + header.length;
  const dataBytes = fileSize - dataOffset;
  const metadata = new Map<string, string>();
  const tensors = new Map<string, SafetensorsTensor>();
  const ranges: { begin: number; end: number; name: string }[] = [];
  for (const [name, entry] of root) {
    if (name === "__metadata__") {
      if (!isJsonObject(entry)) corrupt(`__metadata__ must be an object of strings, found ${describe(entry)}`);
      for (const [k, v] of entry as Map<string, JsonValue>) {
        if (typeof v !== "string") corrupt(`__metadata__.${k} must be a string, found ${describe(v)}`);
        metadata.set(k, v as string);
      }
      continue;
    }
    const at = `tensor ${JSON.stringify(name)}`;
    if (!isJsonObject(entry)) return corrupt(`${at}: expected an object, found ${describe(entry)}`);
    for (const k of entry.keys()) {
      if (k !== "dtype" && k !== "shape" && k !== "data_offsets") {
        corrupt(`${at}: unexpected field ${JSON.stringify(k)} (expected dtype, shape, data_offsets)`);
      }
    }
    const dtype = entry.get("dtype");
    if (typeof dtype !== "string") return corrupt(`${at}: dtype must be a string, found ${describe(dtype)}`);
    if (!isDtype(dtype)) {
      throw new EdgeMoeError(
        "unsupported",
        op,
        `${at}: dtype ${JSON.stringify(dtype)} is not supported (supported: ${
          Object.keys(SAFETENSORS_DTYPE_BYTES).join(", ")
        })`,
      );
    }
    const shapeV = entry.get("shape");
    if (!Array.isArray(shapeV)) return corrupt(`${at}: shape must be an array, found ${describe(shapeV)}`);
    if (shapeV.length > MAX_RANK) corrupt(`${at}: shape has ${shapeV.length} dims, at most ${MAX_RANK} allowed`);
    let elements = 1;
    const shape: number[] = [];
    for (const [i, d] of shapeV.entries()) {
      if (typeof d !== "number" || !Number.isSafeInteger(d) || d < 0) {
        corrupt(`${at}: shape[${i}] must be a non-negative integer, found ${describe(d)}`);
      }
      const dim = d as number;
      if (dim !== 0 && elements > Math.floor(Number.MAX_SAFE_INTEGER / dim)) {
        corrupt(`${at}: shape [${shapeV.join(", ")}] has more elements than can be addressed (overflow)`);
      }
      elements *= dim;
      shape.push(dim);
    }
    const size = SAFETENSORS_DTYPE_BYTES[dtype];
    if (elements > Math.floor(Number.MAX_SAFE_INTEGER / size)) {
      corrupt(`${at}: ${elements} elements of ${dtype} overflow the byte count`);
    }
    const offs = entry.get("data_offsets");
    if (!Array.isArray(offs) || offs.length !== 2) {
      return corrupt(`${at}: data_offsets must be [begin, end], found ${describe(offs)}`);
    }
    const [begin, end] = offs;
    for (const [label, v] of [["begin", begin], ["end", end]] as const) {
      if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
        corrupt(`${at}: data_offsets ${label} must be a non-negative integer, found ${describe(v)}`);
      }
    }
    const b = begin as number, e = end as number;
    if (e < b) corrupt(`${at}: data_offsets [${b}, ${e}] end before begin`);
    if (e - b !== elements * size) {
      corrupt(
        `${at}: data_offsets [${b}, ${e}] hold ${e - b} bytes, expected ${elements * size} (${elements} × ${dtype})`,
      );
    }
    if (e > dataBytes) {
      corrupt(`${at}: data_offsets [${b}, ${e}] run past the data section (${dataBytes} bytes; truncated file?)`);
    }
    tensors.set(name, { name, dtype, shape, elements, fileOffset: dataOffset + b, byteLength: e - b });
    ranges.push({ begin: b, end: e, name });
  }
  ranges.sort((x, y) => x.begin - y.begin || x.end - y.end);
  let cursor = 0;
  for (const r of ranges) {
    if (r.begin > cursor) {
      corrupt(`tensor ${JSON.stringify(r.name)} starts at data byte ${r.begin}, leaving a hole after byte ${cursor}`);
    }
    if (r.begin < cursor) {
      corrupt(`tensor ${JSON.stringify(r.name)} at data bytes [${r.begin}, ${r.end}] overlaps the previous tensor`);
    }
    cursor = r.end;
  }
  if (cursor !== dataBytes) {
    corrupt(
      `tensors cover ${cursor} data bytes but the file holds ${dataBytes} (trailing bytes after the last tensor)`,
    );
  }
  return { tensors, metadata, dataOffset, dataBytes };
}

/** Reads exactly `buf.length` bytes at `offset`; a short read is an `io` error naming `what`. */
export function readExactSync(file: Deno.FsFile, offset: number, buf: Uint8Array, what: string): void {
  file.seekSync(offset, Deno.SeekMode.Start);
  let done = 0;
  while (done < buf.length) {
    const n = file.readSync(buf.subarray(done));
    if (n === null || n === 0) {
      throw new EdgeMoeError(
        "io",
        `read ${what}`,
        `short read: got ${done} of ${buf.length} bytes at offset ${offset} (file truncated or changed?)`,
      );
    }
    done += n;
  }
}

/**
 * An open safetensors file: the validated header, and tensor bytes read on
 * demand.
 *
 * @example
 * ```ts
 * using f = SafetensorsFile.open("model.safetensors");
 * for (const t of f.tensors.values()) console.log(t.name, t.dtype, t.shape);
 * const bytes = f.read("model.embed_tokens.weight");
 * ```
 */
export class SafetensorsFile {
  /** The path it was opened from. */
  readonly path: string;
  /** Tensors by name, in the header's key order. */
  readonly tensors: ReadonlyMap<string, SafetensorsTensor>;
  /** The `__metadata__` strings. */
  readonly metadata: ReadonlyMap<string, string>;
  #file: Deno.FsFile | undefined;

  private constructor(path: string, file: Deno.FsFile, header: SafetensorsHeader) {
    this.path = path;
    this.#file = file;
    this.tensors = header.tensors;
    this.metadata = header.metadata;
  }

  /**
   * Opens `path` and validates its header (reads only the header).
   *
   * @throws {EdgeMoeError} `io` when it cannot be opened, `corrupt_data` / `unsupported` for a bad header.
   */
  static open(path: string): SafetensorsFile {
    let file: Deno.FsFile;
    try {
      file = Deno.openSync(path, { read: true });
    } catch (e) {
      throw new EdgeMoeError("io", `open safetensors ${path}`, (e as Error).message, { cause: e });
    }
    try {
      const size = file.statSync().size;
      const prefix = new Uint8Array(8);
      if (size >= 8) readExactSync(file, 0, prefix, `safetensors ${path}`);
      const n = parseSafetensorsPrefix(prefix, size, path);
      const header = new Uint8Array(n);
      readExactSync(file, 8, header, `safetensors header of ${path}`);
      return new SafetensorsFile(path, file, parseSafetensorsHeader(header, size, path));
    } catch (e) {
      file.close();
      throw e;
    }
  }

  /** The entry of tensor `name`; `invalid_argument` if there is none. */
  tensor(name: string): SafetensorsTensor {
    const t = this.tensors.get(name);
    if (!t) throw new EdgeMoeError("invalid_argument", `read ${this.path}`, `no tensor named ${JSON.stringify(name)}`);
    return t;
  }

  /**
   * Reads `length` bytes of tensor `name` starting `offset` bytes into it
   * (default: the whole tensor).
   *
   * @throws {EdgeMoeError} `invalid_argument` for an unknown name or a range outside the tensor,
   * `io` for a short read, `closed` after {@linkcode close}.
   */
  read(name: string, offset = 0, length?: number): Uint8Array {
    const t = this.tensor(name);
    const len = length ?? t.byteLength - offset;
    if (
      !Number.isSafeInteger(offset) || !Number.isSafeInteger(len) || offset < 0 || len < 0 ||
      offset + len > t.byteLength
    ) {
      throw new EdgeMoeError(
        "invalid_argument",
        `read tensor ${name}`,
        `range [${offset}, ${offset + len}) is outside its ${t.byteLength} bytes`,
      );
    }
    if (!this.#file) throw new EdgeMoeError("closed", `read tensor ${name}`, `${this.path} is closed`);
    const buf = new Uint8Array(len);
    readExactSync(this.#file, t.fileOffset + offset, buf, `tensor ${name} of ${this.path}`);
    return buf;
  }

  /** Closes the file; idempotent. */
  close(): void {
    this.#file?.close();
    this.#file = undefined;
  }

  /** Closes the file. */
  [Symbol.dispose](): void {
    this.close();
  }
}
