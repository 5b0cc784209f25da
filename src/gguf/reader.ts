/**
 * The GGUF reader. It parses the header, metadata and tensor directory with
 * bounded reads from the head of the file (tensor data is never read until
 * asked for) and validates everything before anything is used.
 *
 * File layout (GGUF v2 and v3, little-endian; v1 and big-endian files are
 * refused):
 *
 * ```
 * offset  size  field
 * 0       4     magic "GGUF"
 * 4       4     u32 version (2 or 3)
 * 8       8     u64 n_tensors                    (cap MAX_TENSORS)
 * 16      8     u64 n_kv                         (cap MAX_KV)
 * 24      …     n_kv × { string key, u32 value_type, value }
 *                 string = u64 byte length (cap MAX_STRING_BYTES), UTF-8 bytes
 *                 value  = fixed-size scalar (u8 i8 u16 i16 u32 i32 f32 bool u64 i64 f64),
 *                          string, or array = { u32 item_type, u64 count (cap MAX_ARRAY_LEN), items }
 *       …     n_tensors × { string name (< 64 bytes), u32 n_dims (1..4), n_dims × u64 ne[i] (> 0),
 *                          u32 ggml_type, u64 offset (relative to the data section) }
 *       …     zero padding to `general.alignment` (u32, power of two, default 32)
 * data    …     tensor data; each tensor at data + offset, offset % alignment == 0
 * ```
 *
 * A tensor's dims are in GGML order: `ne[0]` is the row length (fastest
 * varying), so numpy's shape is the reverse. Its byte size is
 * `ne[0]·ne[1]·ne[2]·ne[3] / block_elems × block_bytes` with `ne[0]` a multiple
 * of `block_elems`.
 *
 * @module
 */
import { EdgeMoeError, type EdgeMoeErrorCode } from "../errors.ts";
import {
  ggmlTypeById,
  type GgmlTypeInfo,
  GGUF_VALUE_TYPE_NAMES,
  type GgufArrayItemType,
  type GgufArrayValue,
  type GgufTypedArrays,
  type GgufValue,
  type GgufValueTypeName,
  scalarBytes,
  tensorBytes,
} from "./types.ts";

/** Most tensors a file may declare. */
export const MAX_TENSORS = 1 << 20;
/** Most metadata keys a file may declare. */
export const MAX_KV = 1 << 16;
/** Longest string (key, value or array item) in bytes. */
export const MAX_STRING_BYTES = 1 << 24;
/** Most items in one metadata array. */
export const MAX_ARRAY_LEN = 1 << 24;
/** Longest header (everything before the data section) in bytes. */
export const MAX_HEADER_BYTES = 1 << 30;
/** Longest tensor name in bytes (llama.cpp's `GGML_MAX_NAME` is 64 with the NUL). */
export const MAX_TENSOR_NAME_BYTES = 63;
/** Most dimensions of a tensor (`GGML_MAX_DIMS`). */
export const MAX_DIMS = 4;
/** The alignment when `general.alignment` is absent. */
export const DEFAULT_ALIGNMENT = 32;

const MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
const READ_CHUNK = 1 << 20;

/** The JS value of a GGUF array of `K` items. */
export type ArrayOf<K extends GgufArrayItemType> = K extends "string" ? string[]
  : K extends "bool" ? boolean[]
  : K extends keyof GgufTypedArrays ? GgufTypedArrays[K]
  : never;

/** One tensor of the directory, with absolute offsets. */
export interface GgufTensorInfo {
  /** Its name. */
  readonly name: string;
  /** Its GGML type. */
  readonly type: GgmlTypeInfo;
  /** Dimensions in GGML order (`dims[0]` is the row length). */
  readonly dims: readonly number[];
  /** Element count. */
  readonly elems: number;
  /** Absolute file offset of its data. */
  readonly offset: number;
  /** Bytes of its data. */
  readonly bytes: number;
  /** Its index in the directory. */
  readonly index: number;
}

/** Random access to bytes (a file, or memory for tests and fuzzing). */
export interface ByteSource {
  /** Total size in bytes. */
  readonly size: number;
  /** Fills `dst` from `offset`; returns bytes read (short only at end of source). */
  readAt(offset: number, dst: Uint8Array): number;
  /** Releases the source. Idempotent. */
  close(): void;
}

/** A `ByteSource` over bytes in memory. */
export function memorySource(bytes: Uint8Array): ByteSource {
  return {
    size: bytes.length,
    readAt(offset, dst) {
      const part = bytes.subarray(offset, offset + dst.length);
      dst.set(part);
      return part.length;
    },
    close() {},
  };
}

function fileSource(path: string): ByteSource {
  let file: Deno.FsFile | undefined;
  try {
    file = Deno.openSync(path, { read: true });
    const stat = file.statSync();
    if (!stat.isFile) throw new EdgeMoeError("invalid_argument", `open ${path}`, "not a regular file");
    return {
      size: stat.size,
      readAt(offset, dst) {
        if (!file) throw new EdgeMoeError("closed", `read ${path}`, "the file was closed");
        let done = 0;
        try {
          file.seekSync(offset, Deno.SeekMode.Start);
          while (done < dst.length) {
            const n = file.readSync(dst.subarray(done));
            if (n === null || n === 0) break;
            done += n;
          }
        } catch (e) {
          throw new EdgeMoeError("io", `read ${path}`, `at offset ${offset + done}: ${(e as Error).message}`, {
            cause: e,
          });
        }
        return done;
      },
      close() {
        file?.close();
        file = undefined;
      },
    };
  } catch (e) {
    file?.close();
    if (e instanceof EdgeMoeError) throw e;
    const code: EdgeMoeErrorCode = e instanceof Deno.errors.NotFound ? "invalid_argument" : "io";
    throw new EdgeMoeError(code, `open ${path}`, (e as Error).message, { cause: e });
  }
}

/** Throws through `fail` unless `a` is a power of two in 1..2^31. */
export function checkAlignment(a: number, fail: (detail: string) => Error): void {
  if (!Number.isInteger(a) || a < 1 || a > 0x80000000 || (a & (a - 1)) !== 0) {
    throw fail(`general.alignment is ${a}, expected a power of two`);
  }
}

/**
 * What is being read, for error messages: a name, or a name and an array
 * index (kept apart so no text is built per array item unless it fails).
 */
type Label = string | readonly [string, number];

function text(l: Label): string {
  return typeof l === "string" ? l : `${l[0]}[${l[1]}]`;
}

/** Reads the head of a source forward, in bounded chunks, with a position for error messages. */
class Cursor {
  #buf = new Uint8Array(0);
  #view = new DataView(this.#buf.buffer);
  #bufStart = 0;
  pos = 0;
  readonly #decoder = new TextDecoder("utf-8", { ignoreBOM: true }); // keep a leading U+FEFF: it is part of the string (e.g. a token)

  constructor(readonly src: ByteSource, readonly fail: (code: EdgeMoeErrorCode, detail: string) => EdgeMoeError) {}

  /** Makes `n` bytes at `pos` available; returns their index in the buffer. */
  #need(n: number, what: Label): number {
    const rel = this.pos - this.#bufStart;
    if (rel + n <= this.#buf.length) return rel;
    if (this.pos + n > this.src.size) {
      throw this.fail(
        "corrupt_data",
        `truncated: ${text(what)} needs ${n} bytes at offset ${this.pos}, but the file is ${this.src.size} bytes`,
      );
    }
    if (this.pos + n > MAX_HEADER_BYTES) {
      throw this.fail("corrupt_data", `header exceeds the cap of ${MAX_HEADER_BYTES} bytes at ${text(what)}`);
    }
    const len = Math.min(Math.max(n, READ_CHUNK), this.src.size - this.pos);
    const buf = new Uint8Array(len);
    if (this.src.readAt(this.pos, buf) < len) {
      throw this.fail("io", `short read of ${len} bytes at offset ${this.pos}`);
    }
    this.#buf = buf;
    this.#view = new DataView(buf.buffer);
    this.#bufStart = this.pos;
    return 0;
  }

  remaining(): number {
    return this.src.size - this.pos;
  }

  u32(what: string): number {
    const i = this.#need(4, what);
    this.pos += 4;
    return this.#view.getUint32(i, true);
  }

  u64(what: string): bigint {
    const i = this.#need(8, what);
    this.pos += 8;
    return this.#view.getBigUint64(i, true);
  }

  bytes(n: number, what: Label): Uint8Array {
    const i = this.#need(n, what);
    this.pos += n;
    return this.#buf.subarray(i, i + n);
  }

  /** A count stored as u64, checked against `cap` (a negative i64 shows as huge). */
  count(what: Label, cap: number): number {
    const at = this.pos;
    const i = this.#need(8, what);
    this.pos += 8;
    const lo = this.#view.getUint32(i, true), hi = this.#view.getUint32(i + 4, true);
    if (hi !== 0 || lo > cap) {
      const v = this.#view.getBigUint64(i, true);
      const signed = BigInt.asIntN(64, v);
      throw this.fail(
        "corrupt_data",
        `${text(what)} at offset ${at} is ${signed < 0n ? signed : v}, expected at most ${cap}`,
      );
    }
    return lo;
  }

  string(what: Label, cap = MAX_STRING_BYTES): string {
    const n = this.count(typeof what === "string" ? `length of ${what}` : [`length of ${what[0]}`, what[1]], cap);
    const i = this.#need(n, what);
    this.pos += n;
    const buf = this.#buf;
    if (n <= 32) {
      // Short ASCII strings (most vocabulary tokens) without a TextDecoder call.
      let s = "";
      for (let k = i; k < i + n; k++) {
        if (buf[k] >= 0x80) return this.#decoder.decode(buf.subarray(i, i + n));
        s += String.fromCharCode(buf[k]);
      }
      return s;
    }
    return this.#decoder.decode(buf.subarray(i, i + n));
  }

  scalar(type: GgufValueTypeName, what: Label): number | bigint | boolean {
    const size = scalarBytes(type)!;
    const i = this.#need(size, what);
    const at = this.pos;
    this.pos += size;
    const dv = this.#view;
    switch (type) {
      case "u8":
        return dv.getUint8(i);
      case "i8":
        return dv.getInt8(i);
      case "u16":
        return dv.getUint16(i, true);
      case "i16":
        return dv.getInt16(i, true);
      case "u32":
        return dv.getUint32(i, true);
      case "i32":
        return dv.getInt32(i, true);
      case "f32":
        return dv.getFloat32(i, true);
      case "f64":
        return dv.getFloat64(i, true);
      case "u64":
        return dv.getBigUint64(i, true);
      case "i64":
        return dv.getBigInt64(i, true);
      case "bool": {
        const b = dv.getUint8(i);
        if (b > 1) throw this.fail("corrupt_data", `${text(what)} at offset ${at} is bool ${b}, expected 0 or 1`);
        return b === 1;
      }
      default:
        throw new Error(`not a scalar type: ${type}`);
    }
  }
}

const TYPED_ARRAYS = {
  u8: Uint8Array,
  i8: Int8Array,
  u16: Uint16Array,
  i16: Int16Array,
  u32: Uint32Array,
  i32: Int32Array,
  f32: Float32Array,
  f64: Float64Array,
  u64: BigUint64Array,
  i64: BigInt64Array,
} as const;

function valueType(cur: Cursor, what: string): GgufValueTypeName {
  const at = cur.pos;
  const id = cur.u32(`type of ${what}`);
  const name = GGUF_VALUE_TYPE_NAMES[id];
  if (name === undefined) {
    throw cur.fail("corrupt_data", `${what} at offset ${at} has value type ${id}, expected 0 to 12`);
  }
  return name;
}

function readArray(cur: Cursor, what: string): GgufArrayValue {
  const itemType = valueType(cur, `items of ${what}`);
  if (itemType === "array") throw cur.fail("unsupported", `${what} is an array of arrays, which GGUF readers refuse`);
  const n = cur.count(`length of ${what}`, MAX_ARRAY_LEN);
  const item: GgufArrayItemType = itemType;
  const size = scalarBytes(item);
  const minBytes = n * (size ?? 8);
  if (minBytes > cur.remaining()) {
    throw cur.fail(
      "corrupt_data",
      `truncated: ${what} has ${n} ${item} items (at least ${minBytes} bytes) at offset ${cur.pos}, but only ${cur.remaining()} bytes remain`,
    );
  }
  if (item === "string") {
    const out: string[] = new Array(n);
    for (let i = 0; i < n; i++) out[i] = cur.string([what, i]);
    return { type: "array", itemType: "string", value: out };
  }
  if (item === "bool") {
    const out: boolean[] = new Array(n);
    for (let i = 0; i < n; i++) out[i] = cur.scalar("bool", [what, i]) as boolean;
    return { type: "array", itemType: "bool", value: out };
  }
  const raw = cur.bytes(minBytes, what).slice();
  const Ctor = TYPED_ARRAYS[item];
  return { type: "array", itemType: item, value: new Ctor(raw.buffer, 0, n) } as GgufArrayValue;
}

function readValue(cur: Cursor, what: string): GgufValue {
  const type = valueType(cur, what);
  if (type === "array") return readArray(cur, what);
  if (type === "string") return { type, value: cur.string(`value of ${what}`) };
  return { type, value: cur.scalar(type, `value of ${what}`) } as GgufValue;
}

function describe(v: GgufValue): string {
  return v.type === "array" ? `array of ${v.itemType}` : v.type;
}

/** Parses and validates a GGUF head. Used by `GgufFile`. */
function parse(src: ByteSource, name: string) {
  const fail = (code: EdgeMoeErrorCode, detail: string) => new EdgeMoeError(code, `read gguf ${name}`, detail);
  const cur = new Cursor(src, fail);
  const magic = cur.u32("magic");
  if (magic !== MAGIC) {
    const hex = [...new Uint8Array(new Uint32Array([magic]).buffer)].map((b) => b.toString(16).padStart(2, "0"));
    throw fail("corrupt_data", `magic is ${hex.join(" ")}, expected "GGUF" (47 47 55 46): not a GGUF file`);
  }
  const version = cur.u32("version");
  if (version === 0x02000000 || version === 0x03000000) {
    throw fail("unsupported", `big-endian GGUF (version bytes ${version.toString(16)}) is not supported`);
  }
  if (version !== 2 && version !== 3) {
    throw fail("unsupported", `GGUF version ${version} is not supported, expected 2 or 3`);
  }
  const nTensors = cur.count("n_tensors", MAX_TENSORS);
  const nKv = cur.count("n_kv", MAX_KV);

  const metadata = new Map<string, GgufValue>();
  for (let i = 0; i < nKv; i++) {
    const at = cur.pos;
    const key = cur.string(`key ${i}`);
    if (key.length === 0) throw fail("corrupt_data", `key ${i} at offset ${at} is empty`);
    if (metadata.has(key)) throw fail("corrupt_data", `duplicate metadata key "${key}" at offset ${at}`);
    metadata.set(key, readValue(cur, `metadata key "${key}"`));
  }
  let alignment = DEFAULT_ALIGNMENT;
  const al = metadata.get("general.alignment");
  if (al !== undefined) {
    if (al.type !== "u32") {
      throw fail("corrupt_data", `metadata key "general.alignment": expected u32, found ${describe(al)}`);
    }
    checkAlignment(al.value, (d) => fail("corrupt_data", d));
    alignment = al.value;
  }

  if (nTensors * 24 > cur.remaining()) {
    throw fail(
      "corrupt_data",
      `truncated: ${nTensors} tensor infos need at least ${
        nTensors * 24
      } bytes at offset ${cur.pos}, but only ${cur.remaining()} remain`,
    );
  }
  const raw: { name: string; type: GgmlTypeInfo; dims: number[]; elems: bigint; bytes: bigint; rel: bigint }[] = [];
  const names = new Set<string>();
  for (let i = 0; i < nTensors; i++) {
    const at = cur.pos;
    const tname = cur.string(`name of tensor ${i}`);
    const where = `tensor "${tname}" (info at offset ${at})`;
    if (tname.length === 0 || new TextEncoder().encode(tname).length > MAX_TENSOR_NAME_BYTES) {
      throw fail("corrupt_data", `${where}: name must be 1 to ${MAX_TENSOR_NAME_BYTES} bytes`);
    }
    if (names.has(tname)) throw fail("corrupt_data", `duplicate tensor name "${tname}" at offset ${at}`);
    names.add(tname);
    const nDims = cur.u32(`n_dims of ${where}`);
    if (nDims < 1 || nDims > MAX_DIMS) {
      throw fail("corrupt_data", `${where}: n_dims is ${nDims}, expected 1 to ${MAX_DIMS}`);
    }
    const dims: number[] = [];
    let elems = 1n;
    for (let d = 0; d < nDims; d++) {
      const v = cur.u64(`dim ${d} of ${where}`);
      if (v === 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) {
        throw fail("corrupt_data", `${where}: dim ${d} is ${BigInt.asIntN(64, v)}, expected 1 to 2^53-1`);
      }
      dims.push(Number(v));
      elems *= v;
    }
    const typeId = cur.u32(`type of ${where}`);
    const type = ggmlTypeById(typeId);
    if (!type) throw fail("unsupported", `${where}: GGML type id ${typeId} is not supported`);
    if (dims[0] % type.blockElems !== 0) {
      throw fail(
        "corrupt_data",
        `${where}: row length ${dims[0]} is not a multiple of the ${type.name} block size ${type.blockElems}`,
      );
    }
    const bytes = tensorBytes(type, elems)!;
    const rel = cur.u64(`offset of ${where}`);
    if (rel % BigInt(alignment) !== 0n) {
      throw fail("corrupt_data", `${where}: data offset ${rel} is not a multiple of the alignment ${alignment}`);
    }
    raw.push({ name: tname, type, dims, elems, bytes, rel });
  }
  const dataOffset = Math.ceil(cur.pos / alignment) * alignment;
  const fileSize = BigInt(src.size);
  const tensors: GgufTensorInfo[] = raw.map((t, index) => {
    const start = BigInt(dataOffset) + t.rel;
    if (start + t.bytes > fileSize) {
      throw fail(
        "corrupt_data",
        `tensor "${t.name}": data [${start}, ${start + t.bytes}) lies past the end of the file (${fileSize} bytes)`,
      );
    }
    return {
      name: t.name,
      type: t.type,
      dims: t.dims,
      elems: Number(t.elems),
      offset: Number(start),
      bytes: Number(t.bytes),
      index,
    };
  });
  const sorted = [...tensors].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1], t = sorted[i];
    if (t.offset < prev.offset + prev.bytes) {
      throw fail(
        "corrupt_data",
        `tensor "${t.name}" data at ${t.offset} overlaps tensor "${prev.name}" [${prev.offset}, ${
          prev.offset + prev.bytes
        })`,
      );
    }
  }
  return { version, metadata, alignment, dataOffset, tensors };
}

/**
 * An open GGUF file: validated metadata and tensor directory; tensor data is
 * read on demand. Close it (or `using`) when done.
 *
 * @example
 * ```ts
 * import { GgufFile } from "@edgemoe/edgemoe";
 * using f = GgufFile.open("model.gguf");
 * console.log(f.getString("general.architecture"), f.tensors.length);
 * ```
 */
export class GgufFile implements Disposable {
  #src: ByteSource;
  /** What was opened (a path, or a label for in-memory data). */
  readonly name: string;
  /** GGUF version (2 or 3). */
  readonly version: number;
  /** Metadata in file order. */
  readonly metadata: ReadonlyMap<string, GgufValue>;
  /** Tensor data alignment (`general.alignment`, default 32). */
  readonly alignment: number;
  /** Absolute offset of the data section. */
  readonly dataOffset: number;
  /** File size in bytes. */
  readonly size: number;
  /** The tensor directory, in file order. */
  readonly tensors: readonly GgufTensorInfo[];
  readonly #byName: ReadonlyMap<string, GgufTensorInfo>;

  private constructor(src: ByteSource, name: string) {
    this.#src = src;
    this.name = name;
    this.size = src.size;
    const h = parse(src, name);
    this.version = h.version;
    this.metadata = h.metadata;
    this.alignment = h.alignment;
    this.dataOffset = h.dataOffset;
    this.tensors = h.tensors;
    this.#byName = new Map(h.tensors.map((t) => [t.name, t]));
  }

  /**
   * Opens and validates the GGUF file at `path` (reads only its head).
   *
   * @throws {EdgeMoeError} `corrupt_data` / `unsupported` naming what is wrong and where, `io`.
   */
  static open(path: string): GgufFile {
    const src = fileSource(path);
    try {
      return new GgufFile(src, path);
    } catch (e) {
      src.close();
      throw e;
    }
  }

  /** Parses and validates GGUF bytes from any source (e.g. `memorySource(bytes)`); owns the source. */
  static fromSource(src: ByteSource, name = "<memory>"): GgufFile {
    try {
      return new GgufFile(src, name);
    } catch (e) {
      src.close();
      throw e;
    }
  }

  /** Whether metadata key `key` exists. */
  has(key: string): boolean {
    return this.metadata.has(key);
  }

  /** The value of `key` with its type, or `undefined`. */
  get(key: string): GgufValue | undefined {
    return this.metadata.get(key);
  }

  #typed(key: string, types: readonly GgufValueTypeName[]): GgufValue {
    const v = this.metadata.get(key);
    if (v === undefined) {
      throw new EdgeMoeError("corrupt_data", `read gguf ${this.name}`, `metadata key "${key}" is missing`);
    }
    if (!(types as readonly string[]).includes(v.type)) {
      throw new EdgeMoeError(
        "corrupt_data",
        `read gguf ${this.name}`,
        `metadata key "${key}": expected ${types.join(" or ")}, found ${describe(v)}`,
      );
    }
    return v;
  }

  /** The u32 at `key`. @throws {EdgeMoeError} `corrupt_data` if missing or of another type. */
  getU32(key: string): number {
    return this.#typed(key, ["u32"]).value as number;
  }

  /** The i32 at `key`. @throws {EdgeMoeError} `corrupt_data` if missing or of another type. */
  getI32(key: string): number {
    return this.#typed(key, ["i32"]).value as number;
  }

  /** The u64 at `key`. @throws {EdgeMoeError} `corrupt_data` if missing or of another type. */
  getU64(key: string): bigint {
    return this.#typed(key, ["u64"]).value as bigint;
  }

  /** The f32 at `key`. @throws {EdgeMoeError} `corrupt_data` if missing or of another type. */
  getF32(key: string): number {
    return this.#typed(key, ["f32"]).value as number;
  }

  /** The bool at `key`. @throws {EdgeMoeError} `corrupt_data` if missing or of another type. */
  getBool(key: string): boolean {
    return this.#typed(key, ["bool"]).value as boolean;
  }

  /** The string at `key`. @throws {EdgeMoeError} `corrupt_data` if missing or of another type. */
  getString(key: string): string {
    return this.#typed(key, ["string"]).value as string;
  }

  /**
   * An integer of any integer type at `key` as a number (hyperparameters are
   * u32 or i32 depending on the converter).
   *
   * @throws {EdgeMoeError} `corrupt_data` if missing, not an integer type, or not a safe integer.
   */
  getInt(key: string): number {
    const v = this.#typed(key, ["u8", "i8", "u16", "i16", "u32", "i32", "u64", "i64"]);
    const n = Number(v.value as number | bigint);
    if (!Number.isSafeInteger(n)) {
      throw new EdgeMoeError(
        "corrupt_data",
        `read gguf ${this.name}`,
        `metadata key "${key}": ${v.value} is too large`,
      );
    }
    return n;
  }

  /**
   * The array at `key`, whose items must be of `itemType`.
   *
   * @throws {EdgeMoeError} `corrupt_data` if missing, not an array, or an array of another item type.
   */
  getArray<K extends GgufArrayItemType>(key: string, itemType: K): ArrayOf<K> {
    const v = this.#typed(key, ["array"]) as GgufArrayValue;
    if (v.itemType !== itemType) {
      throw new EdgeMoeError(
        "corrupt_data",
        `read gguf ${this.name}`,
        `metadata key "${key}": expected array of ${itemType}, found array of ${v.itemType}`,
      );
    }
    return v.value as ArrayOf<K>;
  }

  /** The string array at `key` (e.g. `tokenizer.ggml.tokens`). */
  getStringArray(key: string): string[] {
    return this.getArray(key, "string");
  }

  /** The tensor named `name`, or `undefined`. */
  tensor(name: string): GgufTensorInfo | undefined {
    return this.#byName.get(name);
  }

  /**
   * Reads `length` bytes at absolute `offset` (must lie inside the file),
   * into a buffer from `allocate(length)` if given (else a new `Uint8Array`).
   *
   * @throws {EdgeMoeError} `invalid_argument` for a range outside the file, `io` on a short read.
   */
  readRange(offset: number, length: number, allocate?: (bytes: number) => Uint8Array): Uint8Array {
    const op = `read gguf ${this.name}`;
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      throw new EdgeMoeError("invalid_argument", op, `range (${offset}, ${length}) is not a byte range`);
    }
    if (offset + length > this.size) {
      throw new EdgeMoeError(
        "invalid_argument",
        op,
        `range [${offset}, ${offset + length}) is past the end (${this.size})`,
      );
    }
    const out = allocate ? allocate(length) : new Uint8Array(length);
    if (out.length !== length) {
      throw new EdgeMoeError("invalid_argument", op, `allocate(${length}) returned ${out.length} bytes`);
    }
    const n = this.#src.readAt(offset, out);
    if (n !== length) throw new EdgeMoeError("io", op, `short read: ${n} of ${length} bytes at offset ${offset}`);
    return out;
  }

  /**
   * Reads all bytes of tensor `name` (into a buffer from `allocate`, as {@linkcode GgufFile.readRange}).
   *
   * @throws {EdgeMoeError} `invalid_argument` if there is no such tensor, `io`.
   */
  readTensor(name: string, allocate?: (bytes: number) => Uint8Array): Uint8Array {
    const t = this.#require(name);
    return this.readRange(t.offset, t.bytes, allocate);
  }

  /** Streams `length` bytes at `offset` in chunks of at most `chunkBytes` (for large tensors). */
  async *chunks(offset: number, length: number, chunkBytes = 8 << 20): AsyncGenerator<Uint8Array> {
    for (let done = 0; done < length; done += chunkBytes) {
      yield this.readRange(offset + done, Math.min(chunkBytes, length - done));
      await Promise.resolve();
    }
  }

  #require(name: string): GgufTensorInfo {
    const t = this.#byName.get(name);
    if (!t) throw new EdgeMoeError("invalid_argument", `read gguf ${this.name}`, `no tensor named "${name}"`);
    return t;
  }

  /** Closes the file. Idempotent. */
  close(): void {
    this.#src.close();
  }

  /** Same as `close()`. */
  [Symbol.dispose](): void {
    this.close();
  }
}
