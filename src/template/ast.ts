/**
 * The syntax tree of a chat template. Every node carries its 1-based line and
 * column so run-time errors can name where they happened.
 *
 * @module
 */

/** Where a node starts in the template source. */
export interface Pos {
  line: number;
  col: number;
}

/** An expression. */
export type Expr =
  & Pos
  & (
    | { type: "literal"; value: null | boolean | number | string; float: boolean }
    | { type: "name"; name: string }
    | { type: "list"; items: Expr[] }
    | { type: "tuple"; items: Expr[] }
    | { type: "dict"; pairs: [Expr, Expr][] }
    | { type: "attr"; obj: Expr; name: string }
    | { type: "item"; obj: Expr; key: Expr }
    | { type: "slice"; obj: Expr; start?: Expr; stop?: Expr; step?: Expr }
    | { type: "call"; fn: Expr; args: Expr[]; kwargs: [string, Expr][] }
    | { type: "filter"; value: Expr; name: string; args: Expr[]; kwargs: [string, Expr][] }
    | { type: "test"; value: Expr; name: string; args: Expr[]; negated: boolean }
    | { type: "unary"; op: "-" | "+" | "not"; value: Expr }
    | { type: "binary"; op: "+" | "-" | "*" | "/" | "//" | "%" | "**"; left: Expr; right: Expr }
    | { type: "concat"; items: Expr[] }
    | { type: "logic"; op: "and" | "or"; left: Expr; right: Expr }
    | { type: "compare"; first: Expr; ops: [CompareOp, Expr][] }
    | { type: "cond"; test: Expr; then: Expr; else?: Expr }
  );

/** Comparison operators, including membership. */
export type CompareOp = "==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not in";

/** What `{% set %}` and `{% for %}` assign to. */
export type Target =
  & Pos
  & (
    | { type: "name"; name: string }
    | { type: "tuple"; items: Target[] }
    | { type: "attr"; obj: string; name: string }
  );

/** A statement (a piece of the template body). */
export type Stmt =
  & Pos
  & (
    | { type: "text"; text: string }
    | { type: "print"; value: Expr }
    | { type: "if"; branches: [Expr, Stmt[]][]; else: Stmt[] }
    | { type: "for"; target: Target; iter: Expr; filter?: Expr; body: Stmt[]; else: Stmt[] }
    | { type: "set"; target: Target; value: Expr }
    | { type: "set_block"; target: Target; body: Stmt[] }
    | { type: "macro"; name: string; params: string[]; defaults: (Expr | undefined)[]; body: Stmt[] }
    | { type: "filter_block"; name: string; args: Expr[]; kwargs: [string, Expr][]; body: Stmt[] }
    | { type: "break" }
    | { type: "continue" }
  );
