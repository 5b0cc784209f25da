/**
 * The parser of the chat-template language: tokens to a syntax tree, with
 * Jinja's operator precedence. Constructs outside the supported subset are
 * rejected here with an `unsupported` error naming them and where they are.
 *
 * @module
 */
import { EdgeMoeError } from "../errors.ts";
import type { CompareOp, Expr, Pos, Stmt, Target } from "./ast.ts";
import { syntaxError, type Token } from "./lexer.ts";

/** Nesting deeper than this (brackets, unary chains, blocks) is an error rather than a stack overflow. */
const MAX_NESTING = 200;

const UNSUPPORTED_STATEMENTS = new Set([
  "call",
  "include",
  "import",
  "from",
  "extends",
  "block",
  "with",
  "autoescape",
  "do",
  "trans",
]);

function unsupported(pos: Pos, what: string): EdgeMoeError {
  return new EdgeMoeError(
    "unsupported",
    "parse chat template",
    `${what} is not supported, at line ${pos.line}, column ${pos.col}`,
  );
}

class Parser {
  #tokens: Token[];
  #i = 0;
  #depth = 0;
  #filterKnown: (name: string) => boolean;
  #testKnown: (name: string) => boolean;

  constructor(tokens: Token[], filterKnown: (name: string) => boolean, testKnown: (name: string) => boolean) {
    this.#tokens = tokens;
    this.#filterKnown = filterKnown;
    this.#testKnown = testKnown;
  }

  get #cur(): Token {
    return this.#tokens[this.#i];
  }
  #peek(n = 1): Token {
    return this.#tokens[Math.min(this.#i + n, this.#tokens.length - 1)];
  }
  #next(): Token {
    const t = this.#tokens[this.#i];
    if (this.#i < this.#tokens.length - 1) this.#i++;
    return t;
  }
  #fail(t: Token, detail: string): never {
    throw syntaxError(t.line, t.col, detail);
  }
  #describe(t: Token): string {
    if (t.kind === "eof") return "end of template";
    if (t.kind === "var_end" || t.kind === "block_end") return `'${t.value}'`;
    if (t.kind === "string") return "a string";
    return `'${t.value}'`;
  }
  #isOp(v: string, t: Token = this.#cur): boolean {
    return t.kind === "op" && t.value === v;
  }
  #isName(v: string, t: Token = this.#cur): boolean {
    return t.kind === "name" && t.value === v;
  }
  #expectOp(v: string): Token {
    if (!this.#isOp(v)) this.#fail(this.#cur, `expected '${v}', found ${this.#describe(this.#cur)}`);
    return this.#next();
  }
  #expectName(v?: string): Token {
    const t = this.#cur;
    if (t.kind !== "name" || (v !== undefined && t.value !== v)) {
      this.#fail(t, `expected ${v === undefined ? "a name" : `'${v}'`}, found ${this.#describe(t)}`);
    }
    return this.#next();
  }
  #expectBlockEnd(): void {
    if (this.#cur.kind !== "block_end") this.#fail(this.#cur, `expected '%}', found ${this.#describe(this.#cur)}`);
    this.#next();
  }
  #enter(t: Token): void {
    if (++this.#depth > MAX_NESTING) this.#fail(t, `nesting deeper than ${MAX_NESTING} levels`);
  }

  /** Parses statements until a block tag whose keyword is in `ends` (left unconsumed) or the end. */
  parseBody(ends: string[], opener?: Token): Stmt[] {
    const body: Stmt[] = [];
    for (;;) {
      const t = this.#cur;
      if (t.kind === "eof") {
        if (ends.length > 0) {
          const want = ends.map((e) => `'${e}'`).join(" or ");
          this.#fail(
            t,
            opener
              ? `the '${opener.value}' block at line ${opener.line}, column ${opener.col} is not closed: expected ${want}, found the end of the template`
              : `expected ${want}, found the end of the template`,
          );
        }
        return body;
      }
      if (t.kind === "data") {
        body.push({ type: "text", text: t.value, line: t.line, col: t.col });
        this.#next();
      } else if (t.kind === "var_begin") {
        this.#next();
        const value = this.#parseTuple(false);
        if (this.#cur.kind !== "var_end") this.#fail(this.#cur, `expected '}}', found ${this.#describe(this.#cur)}`);
        this.#next();
        body.push({ type: "print", value, line: t.line, col: t.col });
      } else if (t.kind === "block_begin") {
        const kw = this.#peek();
        if (kw.kind === "name" && ends.includes(kw.value)) return body;
        this.#next();
        body.push(this.#parseStatement());
      } else {
        this.#fail(t, `unexpected ${this.#describe(t)}`);
      }
    }
  }

  #parseStatement(): Stmt {
    const kw = this.#cur;
    if (kw.kind !== "name") this.#fail(kw, `expected a statement keyword, found ${this.#describe(kw)}`);
    this.#enter(kw);
    try {
      switch (kw.value) {
        case "if":
          return this.#parseIf();
        case "for":
          return this.#parseFor();
        case "set":
          return this.#parseSet();
        case "macro":
          return this.#parseMacro();
        case "filter":
          return this.#parseFilterBlock();
        case "generation": {
          this.#next();
          this.#expectBlockEnd();
          const body = this.parseBody(["endgeneration"], kw);
          return {
            type: "if",
            branches: [[{ type: "literal", value: true, float: false, ...pos(kw) }, body]],
            else: [],
            ...pos(kw),
          };
        }
        case "break":
        case "continue":
          this.#next();
          this.#expectBlockEnd();
          return { type: kw.value, ...pos(kw) };
        default:
          if (UNSUPPORTED_STATEMENTS.has(kw.value)) throw unsupported(kw, `the '{% ${kw.value} %}' statement`);
          this.#fail(kw, `unknown statement '${kw.value}'`);
      }
    } finally {
      this.#depth--;
    }
  }

  /** Consumes `{% name %}`. */
  #consumeEnd(name: string): void {
    this.#next(); // block_begin
    this.#expectName(name);
    this.#expectBlockEnd();
  }

  #parseIf(): Stmt {
    const kw = this.#next();
    const branches: [Expr, Stmt[]][] = [];
    let elseBody: Stmt[] = [];
    let test = this.#parseTuple(false, true);
    this.#expectBlockEnd();
    for (;;) {
      const body = this.parseBody(["elif", "else", "endif"], kw);
      branches.push([test, body]);
      this.#next(); // block_begin
      const which = this.#next().value;
      if (which === "elif") {
        test = this.#parseTuple(false, true);
        this.#expectBlockEnd();
        continue;
      }
      this.#expectBlockEnd();
      if (which === "else") {
        elseBody = this.parseBody(["endif"], kw);
        this.#consumeEnd("endif");
      }
      break;
    }
    return { type: "if", branches, else: elseBody, ...pos(kw) };
  }

  #parseFor(): Stmt {
    const kw = this.#next();
    const target = this.#parseTarget(false);
    this.#expectName("in");
    const iter = this.#parseTuple(false, true, ["recursive", "if"]);
    let filter: Expr | undefined;
    if (this.#isName("if")) {
      this.#next();
      filter = this.#parseExpression(true);
    }
    if (this.#isName("recursive")) throw unsupported(this.#cur, "a recursive for loop");
    this.#expectBlockEnd();
    const body = this.parseBody(["else", "endfor"], kw);
    let elseBody: Stmt[] = [];
    if (this.#isName("else", this.#peek())) {
      this.#consumeEnd("else");
      elseBody = this.parseBody(["endfor"], kw);
    }
    this.#consumeEnd("endfor");
    return { type: "for", target, iter, filter, body, else: elseBody, ...pos(kw) };
  }

  #parseSet(): Stmt {
    const kw = this.#next();
    const target = this.#parseTarget(true);
    if (this.#isOp("=")) {
      this.#next();
      const value = this.#parseTuple(false);
      this.#expectBlockEnd();
      return { type: "set", target, value, ...pos(kw) };
    }
    if (this.#isOp("|")) throw unsupported(this.#cur, "a filter on a '{% set %}' block");
    this.#expectBlockEnd();
    const body = this.parseBody(["endset"], kw);
    this.#consumeEnd("endset");
    return { type: "set_block", target, body, ...pos(kw) };
  }

  #parseMacro(): Stmt {
    const kw = this.#next();
    const name = this.#expectName().value;
    this.#expectOp("(");
    const params: string[] = [];
    const defaults: (Expr | undefined)[] = [];
    while (!this.#isOp(")")) {
      if (params.length > 0) this.#expectOp(",");
      if (this.#isOp(")")) break;
      if (this.#isOp("*") || this.#isOp("**")) throw unsupported(this.#cur, "a '*' or '**' macro parameter");
      const p = this.#expectName();
      params.push(p.value);
      if (this.#isOp("=")) {
        this.#next();
        defaults.push(this.#parseExpression(true));
      } else {
        if (defaults.some((d) => d !== undefined)) {
          this.#fail(p, `parameter '${p.value}' without a default follows one with a default`);
        }
        defaults.push(undefined);
      }
    }
    this.#next();
    this.#expectBlockEnd();
    const body = this.parseBody(["endmacro"], kw);
    this.#consumeEnd("endmacro");
    return { type: "macro", name, params, defaults, body, ...pos(kw) };
  }

  #parseFilterBlock(): Stmt {
    const kw = this.#next();
    const t = this.#expectName();
    const name = this.#filterName(t);
    const { args, kwargs } = this.#isOp("(") ? this.#parseCallArgs() : { args: [], kwargs: [] };
    this.#expectBlockEnd();
    const body = this.parseBody(["endfilter"], kw);
    this.#consumeEnd("endfilter");
    return { type: "filter_block", name, args, kwargs, body, ...pos(kw) };
  }

  /** `name`, `a, b`, `(a, b)`, or (for set) `ns.attr`. */
  #parseTarget(allowAttr: boolean): Target {
    const first = this.#cur;
    const one = (): Target => {
      if (this.#isOp("(")) {
        const open = this.#next();
        const inner = this.#parseTarget(false);
        this.#expectOp(")");
        return inner.type === "tuple" ? inner : { type: "tuple", items: [inner], ...pos(open) };
      }
      const t = this.#expectName();
      if (allowAttr && this.#isOp(".")) {
        this.#next();
        const attr = this.#expectName();
        return { type: "attr", obj: t.value, name: attr.value, ...pos(t) };
      }
      if (["true", "false", "none", "True", "False", "None"].includes(t.value)) {
        this.#fail(t, `cannot assign to '${t.value}'`);
      }
      return { type: "name", name: t.value, ...pos(t) };
    };
    const items = [one()];
    while (this.#isOp(",")) {
      this.#next();
      if (this.#isName("in") || this.#isOp("=")) break;
      items.push(one());
    }
    if (items.length === 1 && !this.#isOp(",", this.#tokens[this.#i - 1])) return items[0];
    for (const it of items) if (it.type === "attr") this.#fail(first, "cannot unpack into an attribute");
    return { type: "tuple", items, ...pos(first) };
  }

  #isTupleEnd(extra: string[]): boolean {
    const t = this.#cur;
    if (t.kind === "var_end" || t.kind === "block_end" || t.kind === "eof") return true;
    if (this.#isOp(")") || this.#isOp("]") || this.#isOp("}") || this.#isOp("=")) return true;
    return t.kind === "name" && extra.includes(t.value);
  }

  /** An expression, or a tuple of them when commas separate several. */
  #parseTuple(parenthesised: boolean, noCond = false, extraEnds: string[] = []): Expr {
    const start = this.#cur;
    const items: Expr[] = [];
    let comma = false;
    for (;;) {
      if (items.length > 0) {
        if (!this.#isOp(",")) break;
        this.#next();
        comma = true;
      }
      if (this.#isTupleEnd(extraEnds)) break;
      items.push(noCond ? this.#parseOr() : this.#parseExpression(true));
    }
    if (!comma && items.length === 1) return items[0];
    if (items.length === 0 && !parenthesised) {
      this.#fail(start, `expected an expression, found ${this.#describe(start)}`);
    }
    return { type: "tuple", items, ...pos(start) };
  }

  #parseExpression(withCond: boolean): Expr {
    return withCond ? this.#parseCond() : this.#parseOr();
  }

  #parseCond(): Expr {
    let e = this.#parseOr();
    while (this.#isName("if")) {
      const t = this.#next();
      const test = this.#parseOr();
      let alt: Expr | undefined;
      if (this.#isName("else")) {
        this.#next();
        this.#enter(t);
        alt = this.#parseCond();
        this.#depth--;
      }
      e = { type: "cond", test, then: e, else: alt, ...pos(e) };
    }
    return e;
  }

  #parseOr(): Expr {
    let left = this.#parseAnd();
    while (this.#isName("or")) {
      this.#next();
      left = { type: "logic", op: "or", left, right: this.#parseAnd(), ...pos(left) };
    }
    return left;
  }

  #parseAnd(): Expr {
    let left = this.#parseNot();
    while (this.#isName("and")) {
      this.#next();
      left = { type: "logic", op: "and", left, right: this.#parseNot(), ...pos(left) };
    }
    return left;
  }

  #parseNot(): Expr {
    if (this.#isName("not")) {
      const t = this.#next();
      this.#enter(t);
      const value = this.#parseNot();
      this.#depth--;
      return { type: "unary", op: "not", value, ...pos(t) };
    }
    return this.#parseCompare();
  }

  #parseCompare(): Expr {
    const first = this.#parseMath1();
    const ops: [CompareOp, Expr][] = [];
    for (;;) {
      const t = this.#cur;
      if (t.kind === "op" && ["==", "!=", "<", "<=", ">", ">="].includes(t.value)) {
        this.#next();
        ops.push([t.value as CompareOp, this.#parseMath1()]);
      } else if (this.#isName("in")) {
        this.#next();
        ops.push(["in", this.#parseMath1()]);
      } else if (this.#isName("not") && this.#isName("in", this.#peek())) {
        this.#next();
        this.#next();
        ops.push(["not in", this.#parseMath1()]);
      } else break;
    }
    return ops.length === 0 ? first : { type: "compare", first, ops, ...pos(first) };
  }

  #parseMath1(): Expr {
    let left = this.#parseConcat();
    while (this.#isOp("+") || this.#isOp("-")) {
      const op = this.#next().value as "+" | "-";
      left = { type: "binary", op, left, right: this.#parseConcat(), ...pos(left) };
    }
    return left;
  }

  #parseConcat(): Expr {
    const first = this.#parseMath2();
    const items = [first];
    while (this.#isOp("~")) {
      this.#next();
      items.push(this.#parseMath2());
    }
    return items.length === 1 ? first : { type: "concat", items, ...pos(first) };
  }

  #parseMath2(): Expr {
    let left = this.#parsePow();
    while (["*", "/", "//", "%"].some((o) => this.#isOp(o))) {
      const op = this.#next().value as "*" | "/" | "//" | "%";
      left = { type: "binary", op, left, right: this.#parsePow(), ...pos(left) };
    }
    return left;
  }

  #parsePow(): Expr {
    let left = this.#parseUnary(true);
    while (this.#isOp("**")) {
      this.#next();
      left = { type: "binary", op: "**", left, right: this.#parseUnary(true), ...pos(left) };
    }
    return left;
  }

  #parseUnary(withFilter: boolean): Expr {
    const t = this.#cur;
    let node: Expr;
    if (this.#isOp("-") || this.#isOp("+")) {
      this.#next();
      this.#enter(t);
      node = { type: "unary", op: t.value as "-" | "+", value: this.#parseUnary(false), ...pos(t) };
      this.#depth--;
    } else {
      node = this.#parsePostfix(this.#parsePrimary());
    }
    return withFilter ? this.#parseFilterExpr(node) : node;
  }

  #parsePrimary(): Expr {
    const t = this.#cur;
    switch (t.kind) {
      case "name": {
        this.#next();
        if (t.value === "true" || t.value === "True") return { type: "literal", value: true, float: false, ...pos(t) };
        if (t.value === "false" || t.value === "False") {
          return { type: "literal", value: false, float: false, ...pos(t) };
        }
        if (t.value === "none" || t.value === "None") return { type: "literal", value: null, float: false, ...pos(t) };
        return { type: "name", name: t.value, ...pos(t) };
      }
      case "string": {
        let s = "";
        while (this.#cur.kind === "string") s += this.#next().value;
        return { type: "literal", value: s, float: false, ...pos(t) };
      }
      case "int":
        this.#next();
        return { type: "literal", value: Number(t.value), float: false, ...pos(t) };
      case "float":
        this.#next();
        return { type: "literal", value: Number(t.value), float: true, ...pos(t) };
      case "op":
        if (t.value === "(") {
          this.#next();
          this.#enter(t);
          const e = this.#parseTuple(true);
          this.#depth--;
          this.#expectOp(")");
          return e;
        }
        if (t.value === "[") {
          this.#next();
          this.#enter(t);
          const items: Expr[] = [];
          while (!this.#isOp("]")) {
            if (items.length > 0) this.#expectOp(",");
            if (this.#isOp("]")) break;
            items.push(this.#parseExpression(true));
          }
          this.#depth--;
          this.#next();
          return { type: "list", items, ...pos(t) };
        }
        if (t.value === "{") {
          this.#next();
          this.#enter(t);
          const pairs: [Expr, Expr][] = [];
          while (!this.#isOp("}")) {
            if (pairs.length > 0) this.#expectOp(",");
            if (this.#isOp("}")) break;
            const k = this.#parseExpression(true);
            this.#expectOp(":");
            pairs.push([k, this.#parseExpression(true)]);
          }
          this.#depth--;
          this.#next();
          return { type: "dict", pairs, ...pos(t) };
        }
    }
    this.#fail(t, `expected an expression, found ${this.#describe(t)}`);
  }

  #parsePostfix(node: Expr): Expr {
    const start = pos(node);
    for (;;) {
      const t = this.#cur;
      if (this.#isOp(".")) {
        this.#next();
        const n = this.#cur;
        if (n.kind === "name") {
          this.#next();
          node = { type: "attr", obj: node, name: n.value, ...pos(t) };
        } else if (n.kind === "int") {
          this.#next();
          node = {
            type: "item",
            obj: node,
            key: { type: "literal", value: Number(n.value), float: false, ...pos(n) },
            ...pos(t),
          };
        } else this.#fail(n, `expected an attribute name after '.', found ${this.#describe(n)}`);
      } else if (this.#isOp("[")) {
        this.#next();
        this.#enter(t);
        node = this.#parseSubscript(node, t);
        this.#depth--;
      } else if (this.#isOp("(")) {
        const { args, kwargs } = this.#parseCallArgs();
        node = { type: "call", fn: node, args, kwargs, ...start };
      } else return node;
    }
  }

  #parseSubscript(obj: Expr, open: Token): Expr {
    const part = (): Expr | undefined => this.#isOp(":") || this.#isOp("]") ? undefined : this.#parseExpression(true);
    const start = part();
    if (this.#isOp("]")) {
      this.#next();
      if (start === undefined) this.#fail(open, "empty subscript '[]'");
      return { type: "item", obj, key: start!, ...pos(open) };
    }
    if (this.#isOp(",")) throw unsupported(this.#cur, "a subscript with several keys");
    this.#expectOp(":");
    const stop = part();
    let step: Expr | undefined;
    if (this.#isOp(":")) {
      this.#next();
      step = part();
    }
    this.#expectOp("]");
    return { type: "slice", obj, start, stop, step, ...pos(open) };
  }

  #parseCallArgs(): { args: Expr[]; kwargs: [string, Expr][] } {
    const open = this.#expectOp("(");
    this.#enter(open);
    const args: Expr[] = [];
    const kwargs: [string, Expr][] = [];
    while (!this.#isOp(")")) {
      if (args.length + kwargs.length > 0) this.#expectOp(",");
      if (this.#isOp(")")) break;
      if (this.#isOp("*") || this.#isOp("**")) throw unsupported(this.#cur, "'*' or '**' argument unpacking");
      if (this.#cur.kind === "name" && this.#isOp("=", this.#peek())) {
        const name = this.#next().value;
        this.#next();
        kwargs.push([name, this.#parseExpression(true)]);
      } else {
        if (kwargs.length > 0) this.#fail(this.#cur, "positional argument after a keyword argument");
        args.push(this.#parseExpression(true));
      }
    }
    this.#next();
    this.#depth--;
    return { args, kwargs };
  }

  #filterName(t: Token): string {
    let name = t.value;
    while (this.#isOp(".")) {
      this.#next();
      name += "." + this.#expectName().value;
    }
    if (!this.#filterKnown(name)) throw unsupported(t, `the filter '${name}'`);
    return name;
  }

  #parseFilterExpr(node: Expr): Expr {
    for (;;) {
      if (this.#isOp("|")) {
        const bar = this.#next();
        const name = this.#filterName(this.#expectName());
        const { args, kwargs } = this.#isOp("(") ? this.#parseCallArgs() : { args: [], kwargs: [] };
        node = { type: "filter", value: node, name, args, kwargs, ...pos(bar) };
      } else if (this.#isName("is")) {
        const is = this.#next();
        let negated = false;
        if (this.#isName("not")) {
          this.#next();
          negated = true;
        }
        const nt = this.#expectName();
        let name = nt.value;
        while (this.#isOp(".")) {
          this.#next();
          name += "." + this.#expectName().value;
        }
        if (!this.#testKnown(name)) throw unsupported(nt, `the test '${name}'`);
        let args: Expr[] = [];
        const c = this.#cur;
        if (this.#isOp("(")) {
          const call = this.#parseCallArgs();
          if (call.kwargs.length > 0) throw unsupported(c, "keyword arguments to a test");
          args = call.args;
        } else if (
          (["name", "string", "int", "float"].includes(c.kind) || this.#isOp("[") || this.#isOp("{")) &&
          !["else", "or", "and"].includes(c.value)
        ) {
          if (this.#isName("is")) this.#fail(c, "tests cannot be chained with 'is'");
          args = [this.#parsePostfix(this.#parsePrimary())];
        }
        node = { type: "test", value: node, name, args, negated, ...pos(is) };
      } else if (this.#isOp("(") && node.type === "filter") {
        const { args, kwargs } = this.#parseCallArgs();
        node = { type: "call", fn: node, args, kwargs, ...pos(node) };
      } else return node;
    }
  }
}

function pos(p: Pos): Pos {
  return { line: p.line, col: p.col };
}

/**
 * Parses tokens into the template's statements.
 *
 * @param tokens from {@linkcode tokenize}
 * @param filterKnown whether a filter name is implemented (unknown ones are `unsupported` errors)
 * @param testKnown whether a test name (`is NAME`) is implemented
 */
export function parse(
  tokens: Token[],
  filterKnown: (name: string) => boolean,
  testKnown: (name: string) => boolean,
): Stmt[] {
  return new Parser(tokens, filterKnown, testKnown).parseBody([]);
}
