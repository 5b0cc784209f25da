/**
 * The evaluator of the chat-template language: runs a parsed template against
 * a context of template values, with Jinja's scoping (each for-loop iteration
 * and each macro call gets its own scope; `namespace()` carries state out of
 * a loop) and hard limits on output size, work and macro recursion.
 *
 * @module
 */
import { EdgeMoeError } from "../errors.ts";
import type { CompareOp, Expr, Pos, Stmt, Target } from "./ast.ts";
import {
  type BuiltinEnv,
  getAttr,
  getItem,
  limitError,
  makeGlobals,
  pyCompare,
  pyContains,
  pyLen,
  pySlice,
  runFilter,
  runTest,
  toList,
} from "./builtins.ts";
import {
  Callable,
  EvalError,
  isFloat,
  isNumeric,
  LoopInfo,
  Namespace,
  num,
  pyEquals,
  toNumber,
  toStr,
  truthy,
  tuple,
  typeName,
  Undefined,
  type Value,
} from "./values.ts";

/** Bounds on one render. */
export interface RenderLimits {
  /** Longest output (and longest intermediate string or list), in UTF-16 units. Default 4 Mi. */
  maxOutputChars?: number;
  /** Expression evaluations plus loop iterations plus items handled by filters. Default 10 M. */
  maxSteps?: number;
  /** Deepest macro call nesting. Default 100. */
  maxCallDepth?: number;
}

class Scope {
  readonly vars: Map<string, Value> = new Map();
  constructor(readonly parent?: Scope) {}
  lookup(name: string): Value | undefined {
    const v = this.vars.get(name);
    return v !== undefined ? v : this.parent?.lookup(name);
  }
}

type Flow = "break" | "continue" | undefined;

class Buffer {
  parts: string[] = [];
  length = 0;
  constructor(readonly max: number) {}
  write(s: string): void {
    this.length += s.length;
    if (this.length > this.max) throw limitError(this.max);
    this.parts.push(s);
  }
  toString(): string {
    return this.parts.join("");
  }
}

function at(p: Pos): string {
  return `at line ${p.line}, column ${p.col}`;
}

function located(e: unknown, p: Pos): unknown {
  if (e instanceof EvalError) return new EdgeMoeError(e.code, "render chat template", `${e.message} ${at(p)}`);
  if (e instanceof RangeError) {
    return new EdgeMoeError("invalid_argument", "render chat template", `template too deeply nested ${at(p)}`, {
      cause: e,
    });
  }
  return e;
}

/** Runs parsed templates. One instance per render. */
export class Evaluator {
  readonly #env: BuiltinEnv;
  readonly #globals: Map<string, Value>;
  readonly #maxSteps: number;
  readonly #maxDepth: number;
  #steps = 0;
  #depth = 0;

  constructor(limits: RenderLimits, now: () => Date) {
    this.#env = { maxChars: limits.maxOutputChars ?? 4 * 1024 * 1024, now };
    this.#maxSteps = limits.maxSteps ?? 10_000_000;
    this.#maxDepth = limits.maxCallDepth ?? 100;
    this.#globals = makeGlobals(this.#env);
  }

  /** Renders `body` with `context` as the template's variables. */
  render(body: Stmt[], context: Map<string, Value>): string {
    const root = new Scope();
    for (const [k, v] of context) root.vars.set(k, v);
    const out = new Buffer(this.#env.maxChars);
    this.#execBody(body, root, out);
    return out.toString();
  }

  #step(n = 1): void {
    this.#steps += n;
    if (this.#steps > this.#maxSteps) {
      throw new EvalError("invalid_argument", `the template did more than ${this.#maxSteps} steps of work`);
    }
  }

  #execBody(body: Stmt[], scope: Scope, out: Buffer): Flow {
    for (const s of body) {
      let flow: Flow;
      try {
        flow = this.#exec(s, scope, out);
      } catch (e) {
        throw located(e, s);
      }
      if (flow) return flow;
    }
    return undefined;
  }

  #exec(s: Stmt, scope: Scope, out: Buffer): Flow {
    switch (s.type) {
      case "text":
        out.write(s.text);
        return undefined;
      case "print":
        out.write(toStr(this.#eval(s.value, scope)));
        return undefined;
      case "if":
        for (const [test, body] of s.branches) {
          if (truthy(this.#eval(test, scope))) return this.#execBody(body, scope, out);
        }
        return this.#execBody(s.else, scope, out);
      case "for":
        return this.#execFor(s, scope, out);
      case "set":
        this.#assign(s.target, this.#eval(s.value, scope), scope);
        return undefined;
      case "set_block":
        this.#assign(s.target, this.#capture(s.body, new Scope(scope)), scope);
        return undefined;
      case "macro":
        scope.vars.set(s.name, this.#macro(s, scope));
        return undefined;
      case "filter_block": {
        const text = this.#capture(s.body, scope);
        const args = s.args.map((a) => this.#eval(a, scope));
        const kwargs = new Map(s.kwargs.map(([k, v]) => [k, this.#eval(v, scope)]));
        out.write(toStr(runFilter(s.name, text, args, kwargs, this.#env)));
        return undefined;
      }
      case "break":
      case "continue":
        return s.type;
    }
  }

  #capture(body: Stmt[], scope: Scope): string {
    const buf = new Buffer(this.#env.maxChars);
    this.#execBody(body, scope, buf);
    return buf.toString();
  }

  #execFor(s: Extract<Stmt, { type: "for" }>, scope: Scope, out: Buffer): Flow {
    const iter = this.#eval(s.iter, scope);
    if (!(typeof iter === "string" || Array.isArray(iter) || iter instanceof Map || iter instanceof Undefined)) {
      throw new EvalError("invalid_argument", `'${typeName(iter)}' object is not iterable`);
    }
    let items = toList(iter);
    this.#step(items.length);
    if (s.filter) {
      const filter = s.filter;
      items = items.filter((item) => {
        const inner = new Scope(scope);
        this.#assign(s.target, item, inner);
        return truthy(this.#eval(filter, inner));
      });
    }
    if (items.length === 0) return this.#execBody(s.else, scope, out);
    for (let i = 0; i < items.length; i++) {
      this.#step();
      const inner = new Scope(scope);
      this.#assign(s.target, items[i], inner);
      inner.vars.set(
        "loop",
        new LoopInfo(
          i,
          items.length,
          i > 0 ? items[i - 1] : new Undefined("there is no previous item"),
          i + 1 < items.length ? items[i + 1] : new Undefined("there is no next item"),
        ),
      );
      if (this.#execBody(s.body, inner, out) === "break") break;
    }
    return undefined;
  }

  #assign(t: Target, v: Value, scope: Scope): void {
    switch (t.type) {
      case "name":
        scope.vars.set(t.name, v);
        return;
      case "attr": {
        const obj = this.#lookup(t.obj, scope);
        if (!(obj instanceof Namespace)) {
          throw new EvalError(
            "invalid_argument",
            `cannot assign attribute '${t.name}' on '${t.obj}': only namespace() objects take attributes`,
          );
        }
        obj.attrs.set(t.name, v);
        return;
      }
      case "tuple": {
        const items = Array.isArray(v) || typeof v === "string" || v instanceof Map ? toList(v) : undefined;
        if (items === undefined) throw new EvalError("invalid_argument", `cannot unpack a ${typeName(v)}`);
        if (items.length !== t.items.length) {
          throw new EvalError(
            "invalid_argument",
            `cannot unpack ${items.length} values into ${t.items.length} names`,
          );
        }
        t.items.forEach((it, i) => this.#assign(it, items[i], scope));
      }
    }
  }

  #macro(s: Extract<Stmt, { type: "macro" }>, defScope: Scope): Callable {
    return new Callable(s.name, (args, kwargs) => {
      if (args.length > s.params.length) {
        throw new EvalError(
          "invalid_argument",
          `macro '${s.name}' takes not more than ${s.params.length} argument(s), got ${args.length}`,
        );
      }
      for (const k of kwargs.keys()) {
        if (!s.params.includes(k)) throw new EvalError("invalid_argument", `macro '${s.name}' has no parameter '${k}'`);
      }
      if (this.#depth >= this.#maxDepth) {
        throw new EvalError("invalid_argument", `macro calls nested deeper than ${this.#maxDepth}`);
      }
      this.#depth++;
      try {
        const inner = new Scope(defScope);
        s.params.forEach((p, i) => {
          let v: Value;
          if (i < args.length) v = args[i];
          else if (kwargs.has(p)) v = kwargs.get(p)!;
          else if (s.defaults[i]) v = this.#eval(s.defaults[i]!, inner);
          else v = new Undefined(`'${p}' is undefined`);
          inner.vars.set(p, v);
        });
        return this.#capture(s.body, inner);
      } finally {
        this.#depth--;
      }
    });
  }

  #lookup(name: string, scope: Scope): Value {
    const v = scope.lookup(name);
    if (v !== undefined) return v;
    return this.#globals.get(name) ?? new Undefined(`'${name}' is undefined`);
  }

  #eval(e: Expr, scope: Scope): Value {
    try {
      this.#step();
      return this.#evalInner(e, scope);
    } catch (err) {
      throw located(err, e);
    }
  }

  #evalInner(e: Expr, scope: Scope): Value {
    switch (e.type) {
      case "literal":
        return typeof e.value === "number" ? num(e.value, e.float) : e.value;
      case "name":
        return this.#lookup(e.name, scope);
      case "list":
        return e.items.map((x) => this.#eval(x, scope));
      case "tuple":
        return tuple(e.items.map((x) => this.#eval(x, scope)));
      case "dict": {
        const m = new Map<Value, Value>();
        for (const [k, v] of e.pairs) {
          const key = this.#eval(k, scope);
          if (Array.isArray(key) || key instanceof Map || key instanceof Undefined) {
            throw new EvalError("invalid_argument", `unhashable dict key of type '${typeName(key)}'`);
          }
          const existing = [...m.keys()].find((x) => pyEquals(x, key));
          m.set(existing ?? key, this.#eval(v, scope));
        }
        return m;
      }
      case "attr":
        return getAttr(this.#eval(e.obj, scope), e.name, this.#env);
      case "item":
        return getItem(this.#eval(e.obj, scope), this.#eval(e.key, scope), this.#env);
      case "slice": {
        const opt = (x: Expr | undefined): Value => (x ? this.#eval(x, scope) : null);
        return pySlice(this.#eval(e.obj, scope), opt(e.start), opt(e.stop), opt(e.step));
      }
      case "call": {
        const fn = this.#eval(e.fn, scope);
        const args = e.args.map((a) => this.#eval(a, scope));
        const kwargs = new Map(e.kwargs.map(([k, v]) => [k, this.#eval(v, scope)]));
        if (fn instanceof Undefined) throw new EvalError("invalid_argument", `${fn.hint}; it cannot be called`);
        if (!(fn instanceof Callable)) {
          throw new EvalError("invalid_argument", `'${typeName(fn)}' object is not callable`);
        }
        return fn.fn(args, kwargs);
      }
      case "filter": {
        const v = this.#eval(e.value, scope);
        if (Array.isArray(v) || v instanceof Map) this.#step(pyLen(v));
        const args = e.args.map((a) => this.#eval(a, scope));
        const kwargs = new Map(e.kwargs.map(([k, x]) => [k, this.#eval(x, scope)]));
        return runFilter(e.name, v, args, kwargs, this.#env);
      }
      case "test": {
        const v = this.#eval(e.value, scope);
        const ok = runTest(e.name, v, e.args.map((a) => this.#eval(a, scope)));
        return e.negated ? !ok : ok;
      }
      case "unary": {
        const v = this.#eval(e.value, scope);
        if (e.op === "not") return !truthy(v);
        if (!isNumeric(v)) throw operandError(e.op, v);
        return e.op === "-" ? num(-toNumber(v), isFloat(v)) : (typeof v === "boolean" ? toNumber(v) : v);
      }
      case "binary":
        return this.#binary(e.op, this.#eval(e.left, scope), this.#eval(e.right, scope));
      case "concat": {
        const s = e.items.map((x) => toStr(this.#eval(x, scope))).join("");
        if (s.length > this.#env.maxChars) throw limitError(this.#env.maxChars);
        return s;
      }
      case "logic": {
        const l = this.#eval(e.left, scope);
        if (e.op === "and") return truthy(l) ? this.#eval(e.right, scope) : l;
        return truthy(l) ? l : this.#eval(e.right, scope);
      }
      case "compare": {
        let left = this.#eval(e.first, scope);
        for (const [op, rightExpr] of e.ops) {
          const right = this.#eval(rightExpr, scope);
          if (!compare(op, left, right)) return false;
          left = right;
        }
        return true;
      }
      case "cond":
        if (truthy(this.#eval(e.test, scope))) return this.#eval(e.then, scope);
        return e.else ? this.#eval(e.else, scope) : new Undefined("the conditional expression has no else branch");
    }
  }

  #binary(op: string, a: Value, b: Value): Value {
    if (isNumeric(a) && isNumeric(b)) {
      const x = toNumber(a), y = toNumber(b);
      const float = isFloat(a) || isFloat(b);
      switch (op) {
        case "+":
          return num(x + y, float);
        case "-":
          return num(x - y, float);
        case "*":
          return num(x * y, float);
        case "/":
          if (y === 0) throw new EvalError("invalid_argument", "division by zero");
          return num(x / y, true);
        case "//":
          if (y === 0) throw new EvalError("invalid_argument", "integer division or modulo by zero");
          return num(Math.floor(x / y), float);
        case "%":
          if (y === 0) throw new EvalError("invalid_argument", "integer division or modulo by zero");
          return num(x - y * Math.floor(x / y), float);
        case "**":
          return num(x ** y, float || y < 0);
      }
    }
    if (op === "+") {
      if (typeof a === "string" && typeof b === "string") return this.#sized(a + b);
      if (Array.isArray(a) && Array.isArray(b)) return this.#sized(a.concat(b));
    }
    if (op === "*") {
      const [seq, n] = isNumeric(b) ? [a, b] : [b, a];
      if ((typeof seq === "string" || Array.isArray(seq)) && isNumeric(n) && !isFloat(n)) {
        const times = Math.max(0, toNumber(n));
        if (pyLen(seq) * times > this.#env.maxChars) throw limitError(this.#env.maxChars);
        return typeof seq === "string" ? seq.repeat(times) : Array.from({ length: times }, () => seq).flat(1);
      }
    }
    if (op === "%" && typeof a === "string") {
      throw new EvalError("unsupported", "'%' string formatting is not supported");
    }
    throw operandError(op, a, b);
  }

  #sized<T extends string | Value[]>(v: T): T {
    if (v.length > this.#env.maxChars) throw limitError(this.#env.maxChars);
    return v;
  }
}

function operandError(op: string, a: Value, b?: Value): EvalError {
  for (const v of [a, b]) if (v instanceof Undefined) return new EvalError("invalid_argument", v.hint);
  return new EvalError(
    "invalid_argument",
    b === undefined
      ? `bad operand type for unary ${op}: '${typeName(a)}'`
      : `unsupported operand type(s) for ${op}: '${typeName(a)}' and '${typeName(b)}'`,
  );
}

function compare(op: CompareOp, a: Value, b: Value): boolean {
  switch (op) {
    case "==":
      return pyEquals(a, b);
    case "!=":
      return !pyEquals(a, b);
    case "in":
      return pyContains(b, a);
    case "not in":
      return !pyContains(b, a);
  }
  for (const v of [a, b]) if (v instanceof Undefined) throw new EvalError("invalid_argument", v.hint);
  const c = pyCompare(a, b);
  return op === "<" ? c < 0 : op === "<=" ? c <= 0 : op === ">" ? c > 0 : c >= 0;
}
