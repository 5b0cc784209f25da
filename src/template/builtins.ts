/**
 * What a chat template can call: Jinja's filters and tests, Python's string
 * and dict methods, and the globals Hugging Face transformers provides
 * (`raise_exception`, `strftime_now`) plus `range`, `namespace` and `dict`.
 * Attribute and item access live here too: they are the sandbox boundary, so
 * they dispatch on the value kinds of values.ts only and never touch a
 * JavaScript property.
 *
 * @module
 */
import {
  Callable,
  EvalError,
  isFloat,
  isNumeric,
  isTuple,
  jsonDumps,
  LoopInfo,
  mapKey,
  Namespace,
  num,
  pyEquals,
  PyFloat,
  repr,
  toNumber,
  toStr,
  truthy,
  tuple,
  typeName,
  Undefined,
  type Value,
} from "./values.ts";

/** Largest `range()` a template may build (Jinja's sandbox uses the same cap). */
export const MAX_RANGE = 100_000;

/** What builtins need from the running evaluator. */
export interface BuiltinEnv {
  /** Longest string or list a builtin may build. */
  maxChars: number;
  /** The clock for `strftime_now`. */
  now: () => Date;
}

/** Raises Python's TypeError-like message as an EvalError. */
function typeError(msg: string): EvalError {
  return new EvalError("invalid_argument", msg);
}

/** Binds positional and keyword arguments to parameter names; a missing default means required. */
export function bindArgs(
  what: string,
  params: [string, Value?][],
  args: Value[],
  kwargs: Map<string, Value>,
): Value[] {
  if (args.length > params.length) {
    throw typeError(`${what}() takes at most ${params.length} arguments (${args.length} given)`);
  }
  const out: Value[] = [];
  params.forEach(([name, dflt], i) => {
    if (i < args.length) {
      if (kwargs.has(name)) throw typeError(`${what}() got multiple values for argument '${name}'`);
      out.push(args[i]);
    } else if (kwargs.has(name)) out.push(kwargs.get(name)!);
    else if (params[i].length === 2) out.push(dflt as Value);
    else throw typeError(`${what}() missing required argument '${name}'`);
  });
  for (const k of kwargs.keys()) {
    if (!params.some(([n]) => n === k)) throw typeError(`${what}() got an unexpected keyword argument '${k}'`);
  }
  return out;
}

// ---- helpers over Python semantics ----------------------------------------

/** Code points of a string (Python indexes strings by code point). */
function chars(s: string): string[] {
  return Array.from(s);
}

/** Python's `len`. */
export function pyLen(v: Value): number {
  if (typeof v === "string") return chars(v).length;
  if (Array.isArray(v)) return v.length;
  if (v instanceof Map) return v.size;
  if (v instanceof Undefined) return 0;
  throw typeError(`object of type '${typeName(v)}' has no len()`);
}

/** Python's `iter` made a list: lists, tuples, dict keys, string characters; Undefined is empty. */
export function toList(v: Value): Value[] {
  if (Array.isArray(v)) return v.slice();
  if (v instanceof Map) return [...v.keys()];
  if (typeof v === "string") return chars(v);
  if (v instanceof Undefined) return [];
  throw typeError(`'${typeName(v)}' object is not iterable`);
}

function needInt(v: Value, what: string): number {
  if ((typeof v === "number" && Number.isInteger(v)) || typeof v === "boolean") return toNumber(v);
  throw typeError(`${what} must be an integer, not ${typeName(v)}`);
}

function needStr(v: Value, what: string): string {
  if (typeof v === "string") return v;
  throw typeError(`${what} must be a string, not ${typeName(v)}`);
}

/** Python's slice of a list or string. */
export function pySlice(v: Value, start: Value, stop: Value, step: Value): Value {
  const isStr = typeof v === "string";
  if (!isStr && !Array.isArray(v)) {
    if (v instanceof Undefined) return v;
    throw typeError(`'${typeName(v)}' object is not subscriptable`);
  }
  const items: Value[] = isStr ? chars(v as string) : v as Value[];
  const n = items.length;
  const given = (x: Value) => !(x === null || x instanceof Undefined);
  const st = given(step) ? needInt(step, "slice step") : 1;
  if (st === 0) throw typeError("slice step cannot be zero");
  const norm = (x: Value, dflt: number, lo: number, hi: number): number => {
    if (!given(x)) return dflt;
    let i = needInt(x, "slice index");
    if (i < 0) i += n;
    return Math.min(Math.max(i, lo), hi);
  };
  const out: Value[] = [];
  if (st > 0) {
    const a = norm(start, 0, 0, n), b = norm(stop, n, 0, n);
    for (let i = a; i < b; i += st) out.push(items[i]);
  } else {
    const a = norm(start, n - 1, -1, n - 1), b = norm(stop, -1, -1, n - 1);
    for (let i = a; i > b; i += st) out.push(items[i]);
  }
  if (isStr) return out.join("");
  return Array.isArray(v) && isTuple(v) ? tuple(out) : out;
}

/** Python's `<` for sorting and comparisons (numbers with numbers, strings with strings, sequences). */
export function pyCompare(a: Value, b: Value): number {
  if (isNumeric(a) && isNumeric(b)) {
    const x = toNumber(a), y = toNumber(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (typeof a === "string" && typeof b === "string") {
    const x = chars(a), y = chars(b);
    for (let i = 0; i < Math.min(x.length, y.length); i++) {
      if (x[i] !== y[i]) return x[i].codePointAt(0)! < y[i].codePointAt(0)! ? -1 : 1;
    }
    return x.length - y.length < 0 ? -1 : x.length > y.length ? 1 : 0;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    for (let i = 0; i < Math.min(a.length, b.length); i++) {
      if (!pyEquals(a[i], b[i])) return pyCompare(a[i], b[i]);
    }
    return a.length < b.length ? -1 : a.length > b.length ? 1 : 0;
  }
  throw typeError(`'<' not supported between instances of '${typeName(a)}' and '${typeName(b)}'`);
}

/** Python's `in`. */
export function pyContains(container: Value, item: Value): boolean {
  if (typeof container === "string") {
    if (typeof item !== "string") {
      throw typeError(`'in <string>' requires string as left operand, not ${typeName(item)}`);
    }
    return container.includes(item);
  }
  if (Array.isArray(container)) return container.some((x) => pyEquals(x, item));
  if (container instanceof Map) return mapKey(container, item) !== undefined;
  if (container instanceof Undefined) return false;
  throw typeError(`argument of type '${typeName(container)}' is not iterable`);
}

/** Python's whitespace (`str.isspace`), as a character class. */
const PY_WS = "[\\s\\x1c-\\x1f\\x85]";
const WS_LEAD = new RegExp(`^${PY_WS}+`, "u");
const WS_TRAIL = new RegExp(`${PY_WS}+$`, "u");
const WS_RUN = new RegExp(`${PY_WS}+`, "u");
/** Line boundaries of Python's `str.splitlines`. */
const LINE_BREAKS = new RegExp(`\\r\\n|[\\n\\r\\v\\f\\x1c\\x1d\\x1e\\x85\\u2028\\u2029]`);

function pyStrip(s: string, chs: Value, left: boolean, right: boolean): string {
  if (chs === null || chs instanceof Undefined) {
    const l = left ? s.replace(WS_LEAD, "") : s;
    return right ? l.replace(WS_TRAIL, "") : l;
  }
  const set = new Set(chars(needStr(chs, "strip argument")));
  const c = chars(s);
  let a = 0, b = c.length;
  if (left) { while (a < b && set.has(c[a])) a++; }
  if (right) { while (b > a && set.has(c[b - 1])) b--; }
  return c.slice(a, b).join("");
}

function pySplit(s: string, sep: Value, maxsplit: Value): Value[] {
  let max = maxsplit === null || maxsplit instanceof Undefined ? -1 : needInt(maxsplit, "maxsplit");
  if (sep === null || sep instanceof Undefined) {
    const out: Value[] = [];
    let rest = s.replace(WS_LEAD, "");
    while (rest.length > 0) {
      if (max === 0) {
        out.push(rest);
        break;
      }
      const m = WS_RUN.exec(rest);
      if (!m) {
        out.push(rest);
        break;
      }
      out.push(rest.slice(0, m.index));
      rest = rest.slice(m.index + m[0].length);
      max--;
    }
    return out;
  }
  const d = needStr(sep, "separator");
  if (d === "") throw typeError("empty separator");
  const out: Value[] = [];
  let rest = s;
  while (max !== 0) {
    const i = rest.indexOf(d);
    if (i < 0) break;
    out.push(rest.slice(0, i));
    rest = rest.slice(i + d.length);
    max--;
  }
  out.push(rest);
  return out;
}

function pyReplace(s: string, old: string, rep: string, count: number, maxChars: number): string {
  let out = "";
  if (old === "") {
    const c = chars(s);
    let n = 0;
    for (let i = 0; i <= c.length; i++) {
      if (count < 0 || n < count) {
        out += rep;
        n++;
      }
      if (i < c.length) out += c[i];
      if (out.length > maxChars) throw limitError(maxChars);
    }
    return out;
  }
  let rest = s, n = 0;
  for (;;) {
    const i = rest.indexOf(old);
    if (i < 0 || (count >= 0 && n >= count)) break;
    out += rest.slice(0, i) + rep;
    if (out.length > maxChars) throw limitError(maxChars);
    rest = rest.slice(i + old.length);
    n++;
  }
  return out + rest;
}

/** The error for a string or list that would exceed the size cap. */
export function limitError(maxChars: number): EvalError {
  return new EvalError("invalid_argument", `a value or the output exceeds the limit of ${maxChars} characters`);
}

/** Python's `str.title()`: upper after any non-letter, lower otherwise. */
function pyTitle(s: string): string {
  let out = "", prevCased = false;
  for (const ch of s) {
    const cased = ch.toLowerCase() !== ch.toUpperCase();
    out += cased ? (prevCased ? ch.toLowerCase() : ch.toUpperCase()) : ch;
    prevCased = cased;
  }
  return out;
}

function pyCapitalize(s: string): string {
  const c = chars(s);
  return c.length === 0 ? "" : c[0].toUpperCase() + c.slice(1).join("").toLowerCase();
}

/** Python's `str.splitlines()`. */
function splitlines(s: string): string[] {
  const out = s.split(LINE_BREAKS);
  if (out[out.length - 1] === "") out.pop();
  return out;
}

function startsOrEnds(s: string, arg: Value, ends: boolean): boolean {
  const cands = Array.isArray(arg) ? arg : [arg];
  return cands.some((p) => {
    const x = needStr(p, ends ? "endswith argument" : "startswith argument");
    return ends ? s.endsWith(x) : s.startsWith(x);
  });
}

// ---- attribute and item access (the sandbox boundary) -------------------

type Method = (self: never, args: Value[], kwargs: Map<string, Value>, env: BuiltinEnv) => Value;

const STRING_METHODS: Record<string, Method> = {
  strip: (s: string, a, k) => pyStrip(s, bindArgs("strip", [["chars", null]], a, k)[0], true, true),
  lstrip: (s: string, a, k) => pyStrip(s, bindArgs("lstrip", [["chars", null]], a, k)[0], true, false),
  rstrip: (s: string, a, k) => pyStrip(s, bindArgs("rstrip", [["chars", null]], a, k)[0], false, true),
  split: (s: string, a, k) => {
    const [sep, max] = bindArgs("split", [["sep", null], ["maxsplit", -1]], a, k);
    return pySplit(s, sep, max);
  },
  startswith: (s: string, a, k) => startsOrEnds(s, bindArgs("startswith", [["prefix"]], a, k)[0], false),
  endswith: (s: string, a, k) => startsOrEnds(s, bindArgs("endswith", [["suffix"]], a, k)[0], true),
  upper: (s: string, a, k) => (bindArgs("upper", [], a, k), s.toUpperCase()),
  lower: (s: string, a, k) => (bindArgs("lower", [], a, k), s.toLowerCase()),
  title: (s: string, a, k) => (bindArgs("title", [], a, k), pyTitle(s)),
  capitalize: (s: string, a, k) => (bindArgs("capitalize", [], a, k), pyCapitalize(s)),
  replace: (s: string, a, k, env) => {
    const [old, rep, count] = bindArgs("replace", [["old"], ["new"], ["count", -1]], a, k);
    return pyReplace(s, needStr(old, "old"), needStr(rep, "new"), needInt(count, "count"), env.maxChars);
  },
  find: (s: string, a, k) => {
    const sub = needStr(bindArgs("find", [["sub"]], a, k)[0], "find argument");
    const i = s.indexOf(sub);
    return i < 0 ? -1 : chars(s.slice(0, i)).length;
  },
  count: (s: string, a, k) => {
    const sub = needStr(bindArgs("count", [["sub"]], a, k)[0], "count argument");
    if (sub === "") return chars(s).length + 1;
    return s.split(sub).length - 1;
  },
  join: (s: string, a, k, env) => {
    const out = toList(bindArgs("join", [["iterable"]], a, k)[0]).map((x) => needStr(x, "join item")).join(s);
    if (out.length > env.maxChars) throw limitError(env.maxChars);
    return out;
  },
  isdigit: (s: string, a, k) => (bindArgs("isdigit", [], a, k), /^\p{Nd}+$/u.test(s)),
  isspace: (s: string, a, k) => (bindArgs("isspace", [], a, k), /^\s+$/u.test(s)),
};

const DICT_METHODS: Record<string, Method> = {
  get: (m: Map<Value, Value>, a, k) => {
    const [key, dflt] = bindArgs("get", [["key"], ["default", null]], a, k);
    const found = mapKey(m, key);
    return found === undefined ? dflt : m.get(found)!;
  },
  items: (m: Map<Value, Value>, a, k) => (bindArgs("items", [], a, k), [...m].map(([x, y]) => tuple([x, y]))),
  keys: (m: Map<Value, Value>, a, k) => (bindArgs("keys", [], a, k), [...m.keys()]),
  values: (m: Map<Value, Value>, a, k) => (bindArgs("values", [], a, k), [...m.values()]),
};

/** Python methods that exist but are not offered (mutating ones are refused by Jinja's immutable sandbox too). */
const PYTHON_METHODS: Record<string, string[]> = {
  str: [
    "casefold",
    "center",
    "encode",
    "expandtabs",
    "format",
    "format_map",
    "index",
    "isalnum",
    "isalpha",
    "isascii",
    "isdecimal",
    "isidentifier",
    "islower",
    "isnumeric",
    "isprintable",
    "istitle",
    "isupper",
    "ljust",
    "partition",
    "removeprefix",
    "removesuffix",
    "rfind",
    "rindex",
    "rjust",
    "rpartition",
    "rsplit",
    "splitlines",
    "swapcase",
    "translate",
    "zfill",
  ],
  dict: ["clear", "copy", "fromkeys", "pop", "popitem", "setdefault", "update"],
  list: ["append", "clear", "copy", "count", "extend", "index", "insert", "pop", "remove", "reverse", "sort"],
};

function boundMethod(self: Value, name: string, m: Method, env: BuiltinEnv): Callable {
  return new Callable(`${typeName(self)}.${name}`, (args, kwargs) => m(self as never, args, kwargs, env));
}

function unsupportedMethod(self: Value, name: string): Callable {
  return new Callable(`${typeName(self)}.${name}`, () => {
    throw new EvalError("unsupported", `the method ${typeName(self)}.${name}() is not supported`);
  });
}

/** `obj.name` as Jinja resolves it: the Python attribute first, then the item. */
export function getAttr(obj: Value, name: string, env: BuiltinEnv): Value {
  if (obj instanceof Undefined) throw new EvalError("invalid_argument", `${obj.hint}; cannot read '.${name}' of it`);
  if (typeof obj === "string") {
    if (Object.hasOwn(STRING_METHODS, name)) return boundMethod(obj, name, STRING_METHODS[name], env);
    if (PYTHON_METHODS.str.includes(name)) return unsupportedMethod(obj, name);
  } else if (obj instanceof Map) {
    if (Object.hasOwn(DICT_METHODS, name)) return boundMethod(obj, name, DICT_METHODS[name], env);
    if (PYTHON_METHODS.dict.includes(name)) return unsupportedMethod(obj, name);
    const key = mapKey(obj, name);
    if (key !== undefined) return obj.get(key)!;
  } else if (Array.isArray(obj)) {
    if (PYTHON_METHODS.list.includes(name)) return unsupportedMethod(obj, name);
  } else if (obj instanceof Namespace) {
    if (obj.attrs.has(name)) return obj.attrs.get(name)!;
  } else if (obj instanceof LoopInfo) {
    const v = loopAttr(obj, name);
    if (v !== undefined) return v;
  }
  return new Undefined(`'${typeName(obj)} object' has no attribute ${repr(name)}`);
}

function loopAttr(l: LoopInfo, name: string): Value | undefined {
  switch (name) {
    case "index":
      return l.index0 + 1;
    case "index0":
      return l.index0;
    case "revindex":
      return l.length - l.index0;
    case "revindex0":
      return l.length - l.index0 - 1;
    case "first":
      return l.index0 === 0;
    case "last":
      return l.index0 === l.length - 1;
    case "length":
      return l.length;
    case "depth":
      return 1;
    case "depth0":
      return 0;
    case "previtem":
      return l.prev;
    case "nextitem":
      return l.next;
    case "cycle":
      return new Callable("loop.cycle", (args) => {
        if (args.length === 0) throw typeError("no items for cycling given");
        return args[l.index0 % args.length];
      });
  }
  return undefined;
}

/** `obj[key]` as Jinja resolves it: the item first, then (for string keys) the attribute. */
export function getItem(obj: Value, key: Value, env: BuiltinEnv): Value {
  if (obj instanceof Undefined) {
    throw new EvalError("invalid_argument", `${obj.hint}; cannot read [${repr(key)}] of it`);
  }
  if (Array.isArray(obj) || typeof obj === "string") {
    if ((typeof key === "number" && Number.isInteger(key)) || typeof key === "boolean") {
      const items = typeof obj === "string" ? chars(obj) : obj;
      let i = toNumber(key);
      if (i < 0) i += items.length;
      if (i >= 0 && i < items.length) return items[i];
      return new Undefined(`${typeName(obj)} index ${toNumber(key)} out of range`);
    }
  } else if (obj instanceof Map) {
    const k = mapKey(obj, key);
    if (k !== undefined) return obj.get(k)!;
  }
  if (typeof key === "string") return getAttr(obj, key, env);
  return new Undefined(`${repr(typeName(obj))} object has no element ${repr(key)}`);
}

// ---- tests -----------------------------------------------------------------

type Test = (v: Value, args: Value[]) => boolean;

function one(args: Value[], name: string): Value {
  if (args.length !== 1) throw typeError(`test '${name}' takes 1 argument (${args.length} given)`);
  return args[0];
}

/** Jinja's tests, by name (`x is NAME`). */
export const TESTS: Record<string, Test> = {
  defined: (v) => !(v instanceof Undefined),
  undefined: (v) => v instanceof Undefined,
  none: (v) => v === null,
  boolean: (v) => typeof v === "boolean",
  true: (v) => v === true,
  false: (v) => v === false,
  integer: (v) => typeof v === "number" && Number.isInteger(v),
  float: (v) => isFloat(v),
  number: (v) => typeof v === "number" || v instanceof PyFloat || typeof v === "boolean",
  string: (v) => typeof v === "string",
  mapping: (v) => v instanceof Map,
  iterable: (v) => typeof v === "string" || Array.isArray(v) || v instanceof Map,
  sequence: (v) => typeof v === "string" || Array.isArray(v) || v instanceof Map,
  callable: (v) => v instanceof Callable,
  lower: (v) => typeof v === "string" && v === v.toLowerCase(),
  upper: (v) => typeof v === "string" && v === v.toUpperCase(),
  odd: (v) => needInt(v, "odd test value") % 2 !== 0,
  even: (v) => needInt(v, "even test value") % 2 === 0,
  divisibleby: (v, a) => needInt(v, "divisibleby value") % needInt(one(a, "divisibleby"), "divisor") === 0,
  eq: (v, a) => pyEquals(v, one(a, "eq")),
  ne: (v, a) => !pyEquals(v, one(a, "ne")),
  lt: (v, a) => pyCompare(v, one(a, "lt")) < 0,
  le: (v, a) => pyCompare(v, one(a, "le")) <= 0,
  gt: (v, a) => pyCompare(v, one(a, "gt")) > 0,
  ge: (v, a) => pyCompare(v, one(a, "ge")) >= 0,
  in: (v, a) => pyContains(one(a, "in"), v),
  sameas: (v, a) => {
    const o = one(a, "sameas");
    return v === o || (v === null && o === null);
  },
};
TESTS["equalto"] = TESTS.eq;
TESTS["=="] = TESTS.eq;
TESTS["!="] = TESTS.ne;
TESTS["lessthan"] = TESTS.lt;
TESTS["<"] = TESTS.lt;
TESTS["<="] = TESTS.le;
TESTS["greaterthan"] = TESTS.gt;
TESTS[">"] = TESTS.gt;
TESTS[">="] = TESTS.ge;

/** Runs a test by name. */
export function runTest(name: string, v: Value, args: Value[]): boolean {
  if (!Object.hasOwn(TESTS, name)) throw new EvalError("unsupported", `the test '${name}' is not supported`);
  return TESTS[name](v, args);
}

// ---- filters ---------------------------------------------------------------

type Filter = (v: Value, args: Value[], kwargs: Map<string, Value>, env: BuiltinEnv) => Value;

/** Attribute lookup with dots (`a.b`) and integer parts, as Jinja's `attribute=` arguments do. */
function attrPath(v: Value, path: Value, env: BuiltinEnv): Value {
  if (typeof path === "number") return getItem(v, path, env);
  let cur = v;
  for (const part of needStr(path, "attribute").split(".")) {
    cur = /^\d+$/.test(part) ? getItem(cur, Number(part), env) : getItem(cur, part, env);
    if (cur instanceof Undefined) return cur;
  }
  return cur;
}

function sortKey(v: Value, caseSensitive: boolean): Value {
  return !caseSensitive && typeof v === "string" ? v.toLowerCase() : v;
}

function pyRound(x: number, digits: number): number {
  if (!Number.isFinite(x)) return x;
  if (digits === 0) {
    const f = Math.floor(x), d = x - f;
    return d > 0.5 ? f + 1 : d < 0.5 ? f : f % 2 === 0 ? f : f + 1;
  }
  if (digits < 0 || digits > 20) {
    const p = 10 ** -digits;
    return digits < 0 ? pyRound(x / p, 0) * p : x;
  }
  const exact = Math.abs(x).toFixed(Math.min(100, digits + 30));
  const tail = exact.slice(exact.indexOf(".") + 1 + digits);
  let r = Number(x.toFixed(digits));
  if (/^50*$/.test(tail)) {
    const down = Number((Math.sign(x) * Number(exact.slice(0, exact.indexOf(".") + 1 + digits))).toFixed(digits));
    const lastDigit = Number(exact[exact.indexOf(".") + digits]);
    r = lastDigit % 2 === 0 ? down : r;
  }
  return r;
}

function selectOrReject(
  name: string,
  select: boolean,
  byAttr: boolean,
): Filter {
  return (v, args, kwargs, env) => {
    if (kwargs.size > 0) throw typeError(`${name}() takes no keyword arguments`);
    const rest = byAttr ? args.slice(1) : args;
    if (byAttr && args.length === 0) throw typeError(`${name}() missing required argument 'attribute'`);
    const testName = rest.length > 0 ? needStr(rest[0], "test name") : undefined;
    const testArgs = rest.slice(1);
    return toList(v).filter((item) => {
      const x = byAttr ? attrPath(item, args[0], env) : item;
      const ok = testName === undefined ? truthy(x) : runTest(testName, x, testArgs);
      return ok === select;
    });
  };
}

function filterJoin(v: Value, args: Value[], kwargs: Map<string, Value>, env: BuiltinEnv): Value {
  const [sep, attribute] = bindArgs("join", [["d", ""], ["attribute", null]], args, kwargs);
  let items = toList(v);
  if (attribute !== null) items = items.map((x) => attrPath(x, attribute, env));
  const out = items.map(toStr).join(toStr(sep));
  if (out.length > env.maxChars) throw limitError(env.maxChars);
  return out;
}

function toInt(v: Value, dflt: Value, base: number): Value {
  if (typeof v === "string") {
    const s = v.trim().replaceAll("_", "");
    if (base === 10 && /^[+-]?\d+$/.test(s)) return Number(s);
    if (base !== 10) {
      const n = parseInt(s.replace(/^0[xob]/i, ""), base);
      return Number.isNaN(n) ? dflt : n;
    }
    const f = Number(s);
    return s !== "" && Number.isFinite(f) ? Math.trunc(f) : dflt;
  }
  if (isNumeric(v)) {
    const n = toNumber(v);
    return Number.isFinite(n) ? Math.trunc(n) : dflt;
  }
  return dflt;
}

/** Jinja's filters, with Hugging Face's `tojson`. */
export const FILTERS: Record<string, Filter> = {
  abs: (v) => {
    if (!isNumeric(v)) throw typeError(`bad operand type for abs(): '${typeName(v)}'`);
    return num(Math.abs(toNumber(v)), isFloat(v));
  },
  attr: (v, a, k, env) => getAttr(v, needStr(bindArgs("attr", [["name"]], a, k)[0], "attribute name"), env),
  capitalize: (v, a, k) => (bindArgs("capitalize", [], a, k), pyCapitalize(toStr(v))),
  count: (v, a, k) => (bindArgs("count", [], a, k), pyLen(v)),
  default: (v, a, k) => {
    const [dflt, boolean] = bindArgs("default", [["default_value", ""], ["boolean", false]], a, k);
    return v instanceof Undefined || (truthy(boolean) && !truthy(v)) ? dflt : v;
  },
  dictsort: (v, a, k) => {
    const [cs, by, rev] = bindArgs("dictsort", [["case_sensitive", false], ["by", "key"], ["reverse", false]], a, k);
    if (!(v instanceof Map)) throw typeError(`dictsort expects a dict, got ${typeName(v)}`);
    const pos = by === "key" ? 0 : by === "value" ? 1 : -1;
    if (pos < 0) throw typeError("dictsort: 'by' must be 'key' or 'value'");
    const items = [...v].map(([x, y]) => tuple([x, y]));
    items.sort((p, q) => pyCompare(sortKey(p[pos], truthy(cs)), sortKey(q[pos], truthy(cs))));
    return truthy(rev) ? items.reverse() : items;
  },
  first: (v, a, k) => {
    bindArgs("first", [], a, k);
    const items = toList(v);
    return items.length > 0 ? items[0] : new Undefined("No first item, sequence was empty.");
  },
  float: (v, a, k) => {
    const [dflt] = bindArgs("float", [["default", new PyFloat(0)]], a, k);
    if (isNumeric(v)) return num(toNumber(v), true);
    if (typeof v === "string" && v.trim() !== "") {
      const f = Number(v.trim().replaceAll("_", ""));
      if (!Number.isNaN(f)) return num(f, true);
    }
    return dflt;
  },
  indent: (v, a, k) => {
    const [width, first, blank] = bindArgs("indent", [["width", 4], ["first", false], ["blank", false]], a, k);
    const ind = typeof width === "string" ? width : " ".repeat(needInt(width, "indent width"));
    const lines = splitlines(toStr(v) + "\n");
    let rv: string;
    if (truthy(blank)) rv = lines.join("\n" + ind);
    else {
      rv = lines.shift() ?? "";
      if (lines.length > 0) rv += "\n" + lines.map((l) => (l ? ind + l : l)).join("\n");
    }
    return truthy(first) ? ind + rv : rv;
  },
  int: (v, a, k) => {
    const [dflt, base] = bindArgs("int", [["default", 0], ["base", 10]], a, k);
    return toInt(v, dflt, needInt(base, "base"));
  },
  items: (v, a, k) => {
    bindArgs("items", [], a, k);
    if (v instanceof Undefined) return [];
    if (!(v instanceof Map)) throw typeError(`can only get item pairs from a mapping, not ${typeName(v)}`);
    return [...v].map(([x, y]) => tuple([x, y]));
  },
  join: filterJoin,
  last: (v, a, k) => {
    bindArgs("last", [], a, k);
    const items = toList(v);
    return items.length > 0 ? items[items.length - 1] : new Undefined("No last item, sequence was empty.");
  },
  length: (v, a, k) => (bindArgs("length", [], a, k), pyLen(v)),
  list: (v, a, k) => (bindArgs("list", [], a, k), toList(v)),
  lower: (v, a, k) => (bindArgs("lower", [], a, k), toStr(v).toLowerCase()),
  map: (v, a, k, env) => {
    const items = toList(v);
    if (k.has("attribute")) {
      const [attribute, dflt] = bindArgs("map", [["attribute"], ["default", new Undefined("")]], a, k);
      return items.map((x) => {
        const r = attrPath(x, attribute, env);
        return r instanceof Undefined && !(dflt instanceof Undefined) ? dflt : r;
      });
    }
    if (a.length === 0) throw typeError("map() requires a filter name or attribute=");
    const name = needStr(a[0], "filter name");
    if (!Object.hasOwn(FILTERS, name)) throw new EvalError("unsupported", `the filter '${name}' is not supported`);
    return items.map((x) => FILTERS[name](x, a.slice(1), k, env));
  },
  max: (v, a, k, env) => minMax(v, a, k, env, 1),
  min: (v, a, k, env) => minMax(v, a, k, env, -1),
  reject: selectOrReject("reject", false, false),
  rejectattr: selectOrReject("rejectattr", false, true),
  replace: (v, a, k, env) => {
    const [old, rep, count] = bindArgs("replace", [["old"], ["new"], ["count", null]], a, k);
    return pyReplace(toStr(v), toStr(old), toStr(rep), count === null ? -1 : needInt(count, "count"), env.maxChars);
  },
  reverse: (v, a, k) => {
    bindArgs("reverse", [], a, k);
    if (typeof v === "string") return chars(v).reverse().join("");
    return toList(v).reverse();
  },
  round: (v, a, k) => {
    const [precision, method] = bindArgs("round", [["precision", 0], ["method", "common"]], a, k);
    if (!isNumeric(v)) throw typeError(`round() expects a number, got ${typeName(v)}`);
    const p = needInt(precision, "precision");
    const x = toNumber(v);
    if (method === "common") {
      return isFloat(v) ? num(pyRound(x, p), true) : p >= 0 ? x : pyRound(x / 10 ** -p, 0) * 10 ** -p;
    }
    const f = 10 ** p;
    if (method === "ceil") return num(Math.ceil(x * f) / f, true);
    if (method === "floor") return num(Math.floor(x * f) / f, true);
    throw typeError("method must be common, ceil or floor");
  },
  safe: (v, a, k) => (bindArgs("safe", [], a, k), v),
  select: selectOrReject("select", true, false),
  selectattr: selectOrReject("selectattr", true, true),
  sort: (v, a, k, env) => {
    const [rev, cs, attribute] = bindArgs(
      "sort",
      [["reverse", false], ["case_sensitive", false], ["attribute", null]],
      a,
      k,
    );
    const key = (x: Value) => sortKey(attribute === null ? x : attrPath(x, attribute, env), truthy(cs));
    const items = toList(v).map((x, i) => ({ x, i, key: key(x) }));
    items.sort((p, q) => (truthy(rev) ? pyCompare(q.key, p.key) : pyCompare(p.key, q.key)) || p.i - q.i);
    return items.map((p) => p.x);
  },
  string: (v, a, k) => (bindArgs("string", [], a, k), toStr(v)),
  sum: (v, a, k, env) => {
    const [attribute, start] = bindArgs("sum", [["attribute", null], ["start", 0]], a, k);
    let total = start, float = isFloat(start);
    for (const item of toList(v)) {
      const x = attribute === null ? item : attrPath(item, attribute, env);
      if (!isNumeric(x) || !isNumeric(total)) {
        throw typeError(`unsupported operand type(s) for +: '${typeName(total)}' and '${typeName(x)}'`);
      }
      float ||= isFloat(x);
      total = num(toNumber(total) + toNumber(x), float);
    }
    return total;
  },
  title: (v, a, k) => {
    bindArgs("title", [], a, k);
    return toStr(v).split(/([-\s({[<]+)/u).filter((w) => w).map((w) => {
      const c = chars(w);
      return c[0].toUpperCase() + c.slice(1).join("").toLowerCase();
    }).join("");
  },
  tojson: (v, a, k) => {
    const [ensureAscii, indent, separators, sortKeys] = bindArgs(
      "tojson",
      [["ensure_ascii", false], ["indent", null], ["separators", null], ["sort_keys", false]],
      a,
      k,
    );
    const ind = indent === null ? null : typeof indent === "string" ? indent : " ".repeat(needInt(indent, "indent"));
    let itemSep = ind === null ? ", " : ",", keySep = ": ";
    if (separators !== null) {
      if (!Array.isArray(separators) || separators.length !== 2) {
        throw typeError("separators must be an (item, key) pair");
      }
      itemSep = needStr(separators[0], "item separator");
      keySep = needStr(separators[1], "key separator");
    }
    return jsonDumps(v, { ensureAscii: truthy(ensureAscii), indent: ind, itemSep, keySep, sortKeys: truthy(sortKeys) });
  },
  trim: (v, a, k) => pyStrip(toStr(v), bindArgs("trim", [["chars", null]], a, k)[0], true, true),
  unique: (v, a, k, env) => {
    const [cs, attribute] = bindArgs("unique", [["case_sensitive", false], ["attribute", null]], a, k);
    const seen: Value[] = [];
    const out: Value[] = [];
    for (const item of toList(v)) {
      const key = sortKey(attribute === null ? item : attrPath(item, attribute, env), truthy(cs));
      if (!seen.some((s) => pyEquals(s, key))) {
        seen.push(key);
        out.push(item);
      }
    }
    return out;
  },
  upper: (v, a, k) => (bindArgs("upper", [], a, k), toStr(v).toUpperCase()),
  wordcount: (v, a, k) => (bindArgs("wordcount", [], a, k), (toStr(v).match(/\w+/gu) ?? []).length),
};
FILTERS["d"] = FILTERS.default;
FILTERS["e"] = FILTERS.safe;

function minMax(v: Value, a: Value[], k: Map<string, Value>, env: BuiltinEnv, sign: number): Value {
  const [cs, attribute] = bindArgs(sign > 0 ? "max" : "min", [["case_sensitive", false], ["attribute", null]], a, k);
  const items = toList(v);
  if (items.length === 0) return new Undefined(`No aggregated item, sequence was empty.`);
  const key = (x: Value) => sortKey(attribute === null ? x : attrPath(x, attribute, env), truthy(cs));
  let best = items[0];
  for (const x of items.slice(1)) if (sign * pyCompare(key(x), key(best)) > 0) best = x;
  return best;
}

/** Runs a filter by name. */
export function runFilter(name: string, v: Value, args: Value[], kwargs: Map<string, Value>, env: BuiltinEnv): Value {
  if (!Object.hasOwn(FILTERS, name)) throw new EvalError("unsupported", `the filter '${name}' is not supported`);
  return FILTERS[name](v, args, kwargs, env);
}

// ---- globals ---------------------------------------------------------------

const MONTHS = [
  "January",
  "February",
  "March",
  "April",
  "May",
  "June",
  "July",
  "August",
  "September",
  "October",
  "November",
  "December",
];
const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

/** Python's `strftime` for the directives templates use, in local time (as `datetime.now()` gives it). */
function strftime(d: Date, fmt: string): string {
  const p2 = (n: number) => String(n).padStart(2, "0");
  return fmt.replace(/%(.)/g, (whole, c: string) => {
    switch (c) {
      case "Y":
        return String(d.getFullYear());
      case "y":
        return p2(d.getFullYear() % 100);
      case "m":
        return p2(d.getMonth() + 1);
      case "d":
        return p2(d.getDate());
      case "e":
        return String(d.getDate()).padStart(2, " ");
      case "B":
        return MONTHS[d.getMonth()];
      case "b":
        return MONTHS[d.getMonth()].slice(0, 3);
      case "A":
        return DAYS[d.getDay()];
      case "a":
        return DAYS[d.getDay()].slice(0, 3);
      case "H":
        return p2(d.getHours());
      case "I":
        return p2(((d.getHours() + 11) % 12) + 1);
      case "p":
        return d.getHours() < 12 ? "AM" : "PM";
      case "M":
        return p2(d.getMinutes());
      case "S":
        return p2(d.getSeconds());
      case "j": {
        const days = Date.UTC(d.getFullYear(), d.getMonth(), d.getDate()) - Date.UTC(d.getFullYear(), 0, 1);
        return String(days / 86_400_000 + 1).padStart(3, "0");
      }
      case "%":
        return "%";
      default:
        throw new EvalError("unsupported", `strftime directive '${whole}' is not supported`);
    }
  });
}

/** The global functions of a template, given the evaluator's environment. */
export function makeGlobals(env: BuiltinEnv): Map<string, Value> {
  const g = new Map<string, Value>();
  g.set(
    "range",
    new Callable("range", (args, kwargs) => {
      if (kwargs.size > 0) throw typeError("range() takes no keyword arguments");
      if (args.length === 0 || args.length > 3) throw typeError(`range expected 1 to 3 arguments, got ${args.length}`);
      const n = args.map((x) => needInt(x, "range argument"));
      const [start, stop, step] = n.length === 1 ? [0, n[0], 1] : [n[0], n[1], n[2] ?? 1];
      if (step === 0) throw typeError("range() arg 3 must not be zero");
      const len = Math.max(0, Math.ceil((stop - start) / step));
      if (len > MAX_RANGE) {
        throw new EvalError("invalid_argument", `range() of ${len} items exceeds the limit of ${MAX_RANGE}`);
      }
      return Array.from({ length: len }, (_, i) => start + i * step);
    }),
  );
  g.set(
    "namespace",
    new Callable("namespace", (args, kwargs) => {
      const ns = new Namespace();
      if (args.length > 1) throw typeError("namespace() takes at most one positional argument");
      if (args.length === 1) {
        if (!(args[0] instanceof Map)) throw typeError(`namespace() expects a dict, got ${typeName(args[0])}`);
        for (const [k, v] of args[0]) ns.attrs.set(toStr(k), v);
      }
      for (const [k, v] of kwargs) ns.attrs.set(k, v);
      return ns;
    }),
  );
  g.set(
    "dict",
    new Callable("dict", (args, kwargs) => {
      const m = new Map<Value, Value>();
      if (args.length > 1) throw typeError("dict() takes at most one positional argument");
      if (args.length === 1) {
        if (!(args[0] instanceof Map)) throw typeError(`dict() expects a dict, got ${typeName(args[0])}`);
        for (const [k, v] of args[0]) m.set(k, v);
      }
      for (const [k, v] of kwargs) m.set(k, v);
      return m;
    }),
  );
  g.set(
    "raise_exception",
    new Callable("raise_exception", (args) => {
      throw new EvalError("invalid_argument", `raise_exception: ${args.length > 0 ? toStr(args[0]) : ""}`);
    }),
  );
  g.set(
    "strftime_now",
    new Callable(
      "strftime_now",
      (args, kwargs) => strftime(env.now(), needStr(bindArgs("strftime_now", [["format"]], args, kwargs)[0], "format")),
    ),
  );
  return g;
}
