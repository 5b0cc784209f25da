/**
 * Little-endian encoding of GGUF header parts (used by the writer, and by
 * tests that build malformed files).
 *
 * @module
 */
import { EdgeMoeError } from "../errors.ts";
import { type GgufValue, GgufValueType, type GgufValueTypeName } from "./types.ts";

const utf8 = new TextEncoder();

/** A growable little-endian byte buffer with GGUF's primitive encodings. */
export class GgufEncoder {
  #buf = new Uint8Array(4096);
  #view = new DataView(this.#buf.buffer);
  #len = 0;

  /** Bytes written so far. */
  get length(): number {
    return this.#len;
  }

  #reserve(n: number): DataView {
    if (this.#len + n > this.#buf.length) {
      const next = new Uint8Array(Math.max(this.#buf.length * 2, this.#len + n));
      next.set(this.#buf.subarray(0, this.#len));
      this.#buf = next;
      this.#view = new DataView(next.buffer);
    }
    return this.#view;
  }

  /** Appends raw bytes. */
  bytes(b: Uint8Array): void {
    this.#reserve(b.length);
    this.#buf.set(b, this.#len);
    this.#len += b.length;
  }

  /** Appends one number of GGUF value type `type` (not string/array/u64/i64). */
  num(type: GgufValueTypeName, v: number): void {
    const dv = this.#reserve(8);
    const at = this.#len;
    switch (type) {
      case "u8":
      case "bool":
        dv.setUint8(at, v);
        this.#len += 1;
        return;
      case "i8":
        dv.setInt8(at, v);
        this.#len += 1;
        return;
      case "u16":
        dv.setUint16(at, v, true);
        this.#len += 2;
        return;
      case "i16":
        dv.setInt16(at, v, true);
        this.#len += 2;
        return;
      case "u32":
        dv.setUint32(at, v, true);
        this.#len += 4;
        return;
      case "i32":
        dv.setInt32(at, v, true);
        this.#len += 4;
        return;
      case "f32":
        dv.setFloat32(at, v, true);
        this.#len += 4;
        return;
      case "f64":
        dv.setFloat64(at, v, true);
        this.#len += 8;
        return;
      default:
        throw new Error(`num() does not encode ${type}`);
    }
  }

  /** Appends a u32. */
  u32(v: number): void {
    this.num("u32", v);
  }

  /** Appends a u64. */
  u64(v: bigint): void {
    this.#reserve(8).setBigUint64(this.#len, v, true);
    this.#len += 8;
  }

  /** Appends an i64. */
  i64(v: bigint): void {
    this.#reserve(8).setBigInt64(this.#len, v, true);
    this.#len += 8;
  }

  /** Appends a GGUF string: u64 byte length, then UTF-8 bytes. */
  string(s: string): void {
    const b = utf8.encode(s);
    this.u64(BigInt(b.length));
    this.bytes(b);
  }

  /** The bytes written (a copy-free view, valid until the next append). */
  finish(): Uint8Array {
    return this.#buf.subarray(0, this.#len);
  }
}

const INT_RANGES: Partial<Record<GgufValueTypeName, [number, number]>> = {
  u8: [0, 0xff],
  i8: [-0x80, 0x7f],
  u16: [0, 0xffff],
  i16: [-0x8000, 0x7fff],
  u32: [0, 0xffffffff],
  i32: [-0x80000000, 0x7fffffff],
};

function checkNumber(type: GgufValueTypeName, v: unknown, where: string): void {
  const bad = (expected: string) =>
    new EdgeMoeError("invalid_argument", "write gguf", `${where}: expected ${expected}, got ${String(v)}`);
  if (type === "u64" || type === "i64") {
    if (typeof v !== "bigint") throw bad(`a bigint for ${type}`);
    const ok = type === "u64" ? v >= 0n && v < 1n << 64n : v >= -(1n << 63n) && v < 1n << 63n;
    if (!ok) throw bad(`a ${type} in range`);
    return;
  }
  if (type === "bool") {
    if (typeof v !== "boolean") throw bad("a boolean");
    return;
  }
  if (typeof v !== "number") throw bad(`a number for ${type}`);
  const range = INT_RANGES[type];
  if (range && !(Number.isInteger(v) && v >= range[0] && v <= range[1])) throw bad(`an integer in ${type} range`);
}

function encodeItem(enc: GgufEncoder, type: GgufValueTypeName, v: unknown, where: string): void {
  if (type === "string") {
    if (typeof v !== "string") {
      throw new EdgeMoeError("invalid_argument", "write gguf", `${where}: expected a string, got ${typeof v}`);
    }
    enc.string(v);
    return;
  }
  checkNumber(type, v, where);
  if (type === "u64") enc.u64(v as bigint);
  else if (type === "i64") enc.i64(v as bigint);
  else if (type === "bool") enc.num("u8", v ? 1 : 0);
  else enc.num(type, v as number);
}

/**
 * Appends a metadata value: its u32 type id, then the value (arrays: element
 * type id, u64 count, elements). Values are range-checked against their type.
 *
 * @throws {EdgeMoeError} `invalid_argument` naming `where` for a value that does not fit its type.
 */
export function encodeValue(enc: GgufEncoder, v: GgufValue, where: string): void {
  if (!(v.type in GgufValueType)) {
    throw new EdgeMoeError("invalid_argument", "write gguf", `${where}: unknown value type ${String(v.type)}`);
  }
  enc.u32(GgufValueType[v.type]);
  if (v.type !== "array") return encodeItem(enc, v.type, v.value, where);
  if (v.itemType === "array" as string || !(v.itemType in GgufValueType)) {
    throw new EdgeMoeError("unsupported", "write gguf", `${where}: arrays of ${v.itemType} are not supported`);
  }
  enc.u32(GgufValueType[v.itemType]);
  enc.u64(BigInt(v.value.length));
  for (let i = 0; i < v.value.length; i++) encodeItem(enc, v.itemType, v.value[i], `${where}[${i}]`);
}
