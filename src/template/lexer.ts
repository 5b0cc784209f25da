/**
 * The lexer of the chat-template language (the Jinja subset real model chat
 * templates use), with Jinja's whitespace rules as Hugging Face transformers
 * configures them: `trim_blocks` (the first newline after a block or comment
 * tag is dropped), `lstrip_blocks` (spaces and tabs before a block or comment
 * tag at the start of a line are dropped), `-`/`+` modifiers on tags, and the
 * one trailing newline of the source removed.
 *
 * @module
 */
import { EdgeMoeError } from "../errors.ts";

/** Kinds of token. `data` is literal text; the others come from inside tags. */
export type TokenKind =
  | "data"
  | "var_begin"
  | "var_end"
  | "block_begin"
  | "block_end"
  | "name"
  | "string"
  | "int"
  | "float"
  | "op"
  | "eof";

/** One token with its 1-based line and column in the source. */
export interface Token {
  kind: TokenKind;
  /** The text (data, name, operator), or the decoded value of a string literal. */
  value: string;
  line: number;
  col: number;
}

/** Whitespace options; both default to true, as in Hugging Face transformers. */
export interface LexOptions {
  trimBlocks?: boolean;
  lstripBlocks?: boolean;
}

const OPERATORS = [
  "//",
  "**",
  "==",
  "!=",
  ">=",
  "<=",
  "+",
  "-",
  "/",
  "*",
  "%",
  "~",
  "[",
  "]",
  "(",
  ")",
  "{",
  "}",
  "=",
  ".",
  ":",
  ",",
  "|",
  "<",
  ">",
  ";",
];
const FLOAT_RE = /(\d+_)*\d+((\.(\d+_)*\d+)?e[+-]?(\d+_)*\d+|\.(\d+_)*\d+)/y;
const INT_RE = /0b(_?[01])+|0o(_?[0-7])+|0x(_?[\da-fA-F])+|[1-9](_?\d)*|0(_?0)*/y;
const NAME_RE = /[a-zA-Z_][a-zA-Z0-9_]*/y;
const STRING_RE = /'([^'\\]*(?:\\.[^'\\]*)*)'|"([^"\\]*(?:\\.[^"\\]*)*)"/ys;
const WS_RE = /\s+/y;
const TAG_START_RE = /\{[{%#]/g;
const RAW_BEGIN_RE = /\{%(-|\+|)\s*raw\s*(-%\}\s*|%\})/y;
const RAW_END_RE = /\{%(-|\+|)\s*endraw\s*(\+%\}|-%\}\s*|%\})/gs;

/** Decodes the body of a quoted string as Python's `unicode-escape` does (unknown escapes are kept). */
function unescape(body: string): string {
  return body.replace(
    /\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{1,3}|.)/gs,
    (whole: string, e: string) => {
      switch (e[0]) {
        case "n":
          return "\n";
        case "t":
          return "\t";
        case "r":
          return "\r";
        case "\\":
          return "\\";
        case "'":
          return "'";
        case '"':
          return '"';
        case "a":
          return "\x07";
        case "b":
          return "\b";
        case "f":
          return "\f";
        case "v":
          return "\v";
        case "\n":
          return "";
        case "x":
        case "u":
        case "U":
          if (e.length > 1) return String.fromCodePoint(parseInt(e.slice(1), 16));
          return whole;
        default:
          if (/^[0-7]/.test(e)) return String.fromCodePoint(parseInt(e, 8));
          return whole;
      }
    },
  );
}

/** Line/column lookup over the normalised source. */
class Positions {
  #starts: number[] = [0];
  constructor(src: string) {
    for (let i = 0; i < src.length; i++) if (src.charCodeAt(i) === 10) this.#starts.push(i + 1);
  }
  at(offset: number): { line: number; col: number } {
    let lo = 0, hi = this.#starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.#starts[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, col: offset - this.#starts[lo] + 1 };
  }
}

/** A syntax error naming line and column. */
export function syntaxError(line: number, col: number, detail: string): EdgeMoeError {
  return new EdgeMoeError("invalid_argument", "parse chat template", `${detail} at line ${line}, column ${col}`);
}

/**
 * Splits a template into tokens. Comments are dropped; `{% raw %}` bodies become data.
 *
 * @param source the template text
 * @param options whitespace rules (both on by default)
 */
export function tokenize(source: string, options: LexOptions = {}): Token[] {
  const trim = options.trimBlocks ?? true;
  const lstrip = options.lstripBlocks ?? true;
  const lines = source.split(/\r\n|\r|\n/);
  if (lines[lines.length - 1] === "") lines.pop();
  const src = lines.join("\n");
  const positions = new Positions(src);
  const tokens: Token[] = [];
  const push = (kind: TokenKind, value: string, offset: number) => {
    const { line, col } = positions.at(offset);
    tokens.push({ kind, value, line, col });
  };
  const fail = (offset: number, detail: string): never => {
    const { line, col } = positions.at(offset);
    throw syntaxError(line, col, detail);
  };

  /** Applies `-` / lstrip_blocks to the text before a tag; returns the text to keep. */
  const stripBefore = (text: string, textStart: number, sign: string, isVariable: boolean): string => {
    if (sign === "-") return text.replace(/\s+$/u, "");
    if (sign !== "+" && lstrip && !isVariable) {
      const lPos = text.lastIndexOf("\n") + 1;
      const lineStarting = textStart === 0 || src[textStart - 1] === "\n";
      if ((lPos > 0 || lineStarting) && /^\s+$/u.test(text.slice(lPos))) return text.slice(0, lPos);
    }
    return text;
  };
  /** Where a block/comment end of length `len` starting at `at` ends, after `-`/`+`/trim_blocks handling. */
  const afterEnd = (at: number, len: number, sign: string): number => {
    let end = at + len;
    if (sign === "-") {
      WS_RE.lastIndex = end;
      const m = WS_RE.exec(src);
      if (m) end += m[0].length;
    } else if (sign !== "+" && trim && src[end] === "\n") end += 1;
    return end;
  };

  let pos = 0;
  while (pos < src.length) {
    TAG_START_RE.lastIndex = pos;
    const m = TAG_START_RE.exec(src);
    if (!m) {
      push("data", src.slice(pos), pos);
      break;
    }
    const tagAt = m.index;
    const kind = src[tagAt + 1];
    RAW_BEGIN_RE.lastIndex = tagAt;
    const raw = kind === "%" ? RAW_BEGIN_RE.exec(src) : null;
    const sign = src[tagAt + 2] === "-" || src[tagAt + 2] === "+" ? src[tagAt + 2] : "";
    const text = stripBefore(src.slice(pos, tagAt), pos, sign, kind === "{");
    if (text) push("data", text, pos);

    if (raw) {
      const bodyStart = tagAt + raw[0].length;
      RAW_END_RE.lastIndex = bodyStart;
      const end = RAW_END_RE.exec(src);
      if (!end) fail(tagAt, "missing {% endraw %} for this {% raw %}");
      const e = end!;
      const body = stripBefore(src.slice(bodyStart, e.index), bodyStart, e[1], false);
      if (body) push("data", body, bodyStart);
      const endSign = e[2].startsWith("-") ? "-" : e[2].startsWith("+") ? "+" : "";
      pos = endSign === "" ? afterEnd(e.index + e[0].length - 2, 2, "") : e.index + e[0].length;
      continue;
    }
    if (kind === "#") {
      const close = src.indexOf("#}", tagAt + 2 + sign.length);
      if (close < 0) fail(tagAt, "missing end of comment tag '#}'");
      const before = src[close - 1];
      const endSign = close - 1 >= tagAt + 2 + sign.length && (before === "-" || before === "+") ? before : "";
      pos = afterEnd(close, 2, endSign);
      continue;
    }
    const isVar = kind === "{";
    push(isVar ? "var_begin" : "block_begin", src.slice(tagAt, tagAt + 2), tagAt);
    pos = tagAt + 2 + sign.length;
    const brackets: string[] = [];
    for (;;) {
      WS_RE.lastIndex = pos;
      const ws = WS_RE.exec(src);
      if (ws) pos += ws[0].length;
      if (pos >= src.length) fail(tagAt, `missing end of ${isVar ? "'{{' expression '}}'" : "'{%' block '%}'"}`);
      if (brackets.length === 0) {
        const close = isVar ? "}}" : "%}";
        const c = src[pos];
        if ((c === "-" || c === "+") && src.startsWith(close, pos + 1) && !(isVar && c === "+")) {
          push(isVar ? "var_end" : "block_end", close, pos);
          pos = c === "-" ? afterEnd(pos + 1, 2, "-") : pos + 3;
          break;
        }
        if (src.startsWith(close, pos)) {
          push(isVar ? "var_end" : "block_end", close, pos);
          pos = isVar ? pos + 2 : afterEnd(pos, 2, "");
          break;
        }
      }
      let mm: RegExpExecArray | null;
      FLOAT_RE.lastIndex = pos;
      if ((src[pos - 1] !== "." || pos === 0) && (mm = FLOAT_RE.exec(src))) {
        push("float", mm[0].replaceAll("_", ""), pos);
        pos += mm[0].length;
        continue;
      }
      INT_RE.lastIndex = pos;
      if ((mm = INT_RE.exec(src))) {
        push("int", mm[0].replaceAll("_", ""), pos);
        pos += mm[0].length;
        continue;
      }
      NAME_RE.lastIndex = pos;
      if ((mm = NAME_RE.exec(src))) {
        push("name", mm[0], pos);
        pos += mm[0].length;
        continue;
      }
      STRING_RE.lastIndex = pos;
      if ((mm = STRING_RE.exec(src))) {
        push("string", unescape(mm[1] ?? mm[2]), pos);
        pos += mm[0].length;
        continue;
      }
      const op = OPERATORS.find((o) => src.startsWith(o, pos));
      if (op === undefined) fail(pos, `unexpected character '${src[pos]}'`);
      const o = op!;
      if (o === "(" || o === "[" || o === "{") brackets.push(o === "(" ? ")" : o === "[" ? "]" : "}");
      else if (o === ")" || o === "]" || o === "}") {
        const want = brackets.pop();
        if (want === undefined) fail(pos, `unexpected '${o}'`);
        if (want !== o) fail(pos, `unexpected '${o}', expected '${want}'`);
      }
      push("op", o, pos);
      pos += o.length;
    }
  }
  push("eof", "", src.length);
  return tokens;
}
