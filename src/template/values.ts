/**
 * The values a chat template computes with, modelled on the Python objects
 * Jinja works on, so that printing, comparing and serialising give the same
 * bytes as Jinja: `None`/`True`/`False`, ints versus floats (`2.0`), Python
 * `repr` of lists and dicts, and `json.dumps` spacing.
 *
 * Only these kinds exist inside the evaluator; context data is converted into
 * them on entry ({@linkcode fromJs}), so a template can never reach a
 * JavaScript object, its prototype or a function.
 *
 * @module
 */
import { EdgeMoeError, type EdgeMoeErrorCode } from "../errors.ts";

/** An error raised while evaluating; the evaluator adds the template position. */
export class EvalError extends Error {
  constructor(readonly code: EdgeMoeErrorCode, message: string) {
    super(message);
  }
}

/** Jinja's `Undefined`: a missing variable, key or attribute. `hint` says what was missing. */
export class Undefined {
  constructor(readonly hint: string) {}
}

/** A float whose value happens to be integral (`2.0`); non-integral numbers are floats already. */
export class PyFloat {
  constructor(readonly v: number) {}
}

/** Jinja's `namespace()`: the one object a template may assign attributes on. */
export class Namespace {
  readonly attrs: Map<string, Value> = new Map();
}

/** Something a template can call: a macro, a global function or a bound method. */
export class Callable {
  constructor(
    readonly name: string,
    readonly fn: (args: Value[], kwargs: Map<string, Value>) => Value,
  ) {}
}

/** `loop` inside a for loop. */
export class LoopInfo {
  constructor(
    readonly index0: number,
    readonly length: number,
    readonly prev: Value,
    readonly next: Value,
  ) {}
}

/** A template value. Arrays are lists (or tuples, see {@linkcode isTuple}); Maps are dicts. */
export type Value =
  | Undefined
  | null
  | boolean
  | number
  | PyFloat
  | string
  | Value[]
  | Map<Value, Value>
  | Namespace
  | Callable
  | LoopInfo;

const TUPLES = new WeakSet<Value[]>();

/** Marks an array as a Python tuple (printed with parentheses). */
export function tuple(items: Value[]): Value[] {
  TUPLES.add(items);
  return items;
}

/** Whether an array is a tuple. */
export function isTuple(v: Value[]): boolean {
  return TUPLES.has(v);
}

/** A number as an int or a float (`float` forces float-ness for integral values). */
export function num(x: number, float: boolean): number | PyFloat {
  return float && Number.isInteger(x) ? new PyFloat(x) : x;
}

/** Whether a value is a Python float. */
export function isFloat(v: Value): boolean {
  return v instanceof PyFloat || (typeof v === "number" && !Number.isInteger(v));
}

/** Whether a value is a number (int, float or bool, as Python treats bools as ints). */
export function isNumeric(v: Value): v is number | PyFloat | boolean {
  return typeof v === "number" || v instanceof PyFloat || typeof v === "boolean";
}

/** The JS number of a numeric value. */
export function toNumber(v: number | PyFloat | boolean): number {
  return v instanceof PyFloat ? v.v : typeof v === "boolean" ? (v ? 1 : 0) : v;
}

/** Python's `type(x).__name__`, for error messages. */
export function typeName(v: Value): string {
  if (v instanceof Undefined) return "Undefined";
  if (v === null) return "NoneType";
  if (typeof v === "boolean") return "bool";
  if (typeof v === "number" || v instanceof PyFloat) return isFloat(v) ? "float" : "int";
  if (typeof v === "string") return "str";
  if (Array.isArray(v)) return isTuple(v) ? "tuple" : "list";
  if (v instanceof Map) return "dict";
  if (v instanceof Namespace) return "Namespace";
  if (v instanceof LoopInfo) return "LoopContext";
  return "function";
}

/** Python truthiness. */
export function truthy(v: Value): boolean {
  if (v instanceof Undefined || v === null) return false;
  if (typeof v === "boolean") return v;
  if (typeof v === "number") return v !== 0;
  if (v instanceof PyFloat) return v.v !== 0;
  if (typeof v === "string") return v.length > 0;
  if (Array.isArray(v)) return v.length > 0;
  if (v instanceof Map) return v.size > 0;
  return true;
}

/** Python `==`. */
export function pyEquals(a: Value, b: Value): boolean {
  if (isNumeric(a) && isNumeric(b)) return toNumber(a) === toNumber(b);
  if (a instanceof Undefined || b instanceof Undefined) return a instanceof Undefined && b instanceof Undefined;
  if (Array.isArray(a) && Array.isArray(b)) {
    return isTuple(a) === isTuple(b) && a.length === b.length && a.every((x, i) => pyEquals(x, b[i]));
  }
  if (a instanceof Map && b instanceof Map) {
    if (a.size !== b.size) return false;
    for (const [k, v] of a) {
      const key = mapKey(b, k);
      if (key === undefined || !pyEquals(v, b.get(key)!)) return false;
    }
    return true;
  }
  return a === b;
}

/** The key of `m` equal to `k` in Python's sense (`1 == 1.0 == True`), or undefined. */
export function mapKey(m: Map<Value, Value>, k: Value): Value | undefined {
  if (m.has(k)) return k;
  if (isNumeric(k)) {
    for (const key of m.keys()) if (isNumeric(key) && toNumber(key) === toNumber(k)) return key;
  }
  return undefined;
}

/** Python's `float.__repr__`: shortest round-trip digits, exponent from 1e16 and below 1e-4. */
export function floatRepr(x: number): string {
  if (Number.isNaN(x)) return "nan";
  if (!Number.isFinite(x)) return x > 0 ? "inf" : "-inf";
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  const [mant, expStr] = x.toExponential().split("e");
  const exp = Number(expStr);
  if (exp < -4 || exp >= 16) {
    const sign = exp < 0 ? "-" : "+";
    return `${mant}e${sign}${String(Math.abs(exp)).padStart(2, "0")}`;
  }
  const neg = x < 0;
  const digits = mant.replace("-", "").replace(".", "");
  let s: string;
  if (exp >= 0) {
    s = digits.length > exp + 1
      ? `${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`
      : `${digits.padEnd(exp + 1, "0")}.0`;
  } else s = `0.${"0".repeat(-exp - 1)}${digits}`;
  return neg ? `-${s}` : s;
}

/** An int as Python prints it (no exponent). */
function intRepr(x: number): string {
  return Math.abs(x) < 1e21 ? String(x) : BigInt(x).toString();
}

const NON_PRINTABLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]/u;

/** Python's `repr` of a string. */
export function stringRepr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (ch === quote || ch === "\\") out += "\\" + ch;
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (ch !== " " && NON_PRINTABLE.test(ch)) {
      out += cp < 0x100
        ? `\\x${cp.toString(16).padStart(2, "0")}`
        : cp < 0x10000
        ? `\\u${cp.toString(16).padStart(4, "0")}`
        : `\\U${cp.toString(16).padStart(8, "0")}`;
    } else out += ch;
  }
  return out + quote;
}

/** Python's `repr`. */
export function repr(v: Value): string {
  if (typeof v === "string") return stringRepr(v);
  if (v instanceof Undefined) return "Undefined";
  return toStr(v);
}

/** Python's `str`, as `{{ v }}` prints it (Undefined prints nothing). */
export function toStr(v: Value): string {
  if (typeof v === "string") return v;
  if (v instanceof Undefined) return "";
  if (v === null) return "None";
  if (typeof v === "boolean") return v ? "True" : "False";
  if (typeof v === "number") return Number.isInteger(v) ? intRepr(v) : floatRepr(v);
  if (v instanceof PyFloat) return floatRepr(v.v);
  if (Array.isArray(v)) {
    const inner = v.map(repr).join(", ");
    if (isTuple(v)) return v.length === 1 ? `(${inner},)` : `(${inner})`;
    return `[${inner}]`;
  }
  if (v instanceof Map) return `{${[...v].map(([k, x]) => `${repr(k)}: ${repr(x)}`).join(", ")}}`;
  if (v instanceof Namespace) return `<Namespace ${toStr(v.attrs as Map<Value, Value>)}>`;
  if (v instanceof LoopInfo) return "<LoopContext>";
  return `<function ${v.name}>`;
}

/** Options of Python's `json.dumps` as Hugging Face's `tojson` filter exposes them. */
export interface JsonOptions {
  ensureAscii: boolean;
  indent: string | null;
  itemSep: string;
  keySep: string;
  sortKeys: boolean;
}

function jsonString(s: string, ascii: boolean): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const ch = s[i];
    if (ch === '"') out += '\\"';
    else if (ch === "\\") out += "\\\\";
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (ch === "\b") out += "\\b";
    else if (ch === "\f") out += "\\f";
    else if (c < 0x20 || (ascii && c > 0x7e)) out += `\\u${c.toString(16).padStart(4, "0")}`;
    else out += ch;
  }
  return out + '"';
}

/**
 * Python's `json.dumps` of a template value.
 *
 * @throws EdgeMoeError `invalid_argument` for values JSON cannot hold (Undefined, functions)
 */
export function jsonDumps(v: Value, o: JsonOptions, depth = 0, level = 0): string {
  if (depth > 500) {
    throw new EvalError("invalid_argument", "tojson: value nested too deeply");
  }
  if (v === null) return "null";
  if (typeof v === "boolean") return v ? "true" : "false";
  if (typeof v === "number" || v instanceof PyFloat) {
    const x = toNumber(v);
    if (Number.isNaN(x)) return "NaN";
    if (!Number.isFinite(x)) return x > 0 ? "Infinity" : "-Infinity";
    return toStr(v);
  }
  if (typeof v === "string") return jsonString(v, o.ensureAscii);
  const open = (items: string[], l: string, r: string): string => {
    if (items.length === 0) return l + r;
    if (o.indent === null) return l + items.join(o.itemSep) + r;
    const inner = "\n" + o.indent.repeat(level + 1);
    return l + inner + items.join(o.itemSep + inner) + "\n" + o.indent.repeat(level) + r;
  };
  if (Array.isArray(v)) return open(v.map((x) => jsonDumps(x, o, depth + 1, level + 1)), "[", "]");
  if (v instanceof Map) {
    let entries = [...v].map(([k, x]): [string, Value] => {
      if (typeof k === "string") return [k, x];
      if (k === null) return ["null", x];
      if (typeof k === "boolean") return [k ? "true" : "false", x];
      if (typeof k === "number" || k instanceof PyFloat) return [toStr(k), x];
      throw new EvalError("invalid_argument", `tojson: keys must be str, int, float, bool or None, not ${typeName(k)}`);
    });
    if (o.sortKeys) entries = entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return open(
      entries.map(([k, x]) => jsonString(k, o.ensureAscii) + o.keySep + jsonDumps(x, o, depth + 1, level + 1)),
      "{",
      "}",
    );
  }
  throw new EvalError("invalid_argument", `tojson: Object of type ${typeName(v)} is not JSON serializable`);
}

/** Caps on context data handed to a template. */
const MAX_INPUT_DEPTH = 100;

/**
 * Converts JSON-like JavaScript data (objects, arrays, strings, numbers,
 * booleans, null) into template values. Own enumerable properties only;
 * anything else (functions, class instances, symbols, bigints, cycles beyond
 * the depth cap) is rejected.
 *
 * @param x the data
 * @param where its name in the context, for errors
 */
export function fromJs(x: unknown, where: string, depth = 0): Value {
  const bad = (what: string) => new EdgeMoeError("invalid_argument", "render chat template", `${where}: ${what}`);
  if (depth > MAX_INPUT_DEPTH) throw bad(`nested deeper than ${MAX_INPUT_DEPTH} levels`);
  if (x === null || x === undefined) return null;
  switch (typeof x) {
    case "string":
    case "boolean":
      return x;
    case "number":
      return x;
    case "object": {
      if (Array.isArray(x)) return x.map((item, i) => fromJs(item, `${where}[${i}]`, depth + 1));
      const proto = Object.getPrototypeOf(x);
      if (proto !== Object.prototype && proto !== null) {
        throw bad(`expected plain JSON data, found an instance of ${proto?.constructor?.name ?? "an object"}`);
      }
      const m = new Map<Value, Value>();
      for (const key of Object.keys(x)) {
        m.set(key, fromJs((x as Record<string, unknown>)[key], `${where}.${key}`, depth + 1));
      }
      return m;
    }
    default:
      throw bad(`expected JSON data, found a ${typeof x}`);
  }
}
