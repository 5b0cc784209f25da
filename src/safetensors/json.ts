/**
 * A strict JSON parser for untrusted headers. Unlike `JSON.parse` it refuses
 * duplicate object keys (which `JSON.parse` silently resolves to the last one),
 * returns objects as `Map`s (so a key such as `__proto__` is plain data), caps
 * nesting depth, and reports the byte offset of the first problem.
 *
 * @module
 */
import { EdgeMoeError } from "../errors.ts";

/** A parsed JSON value; objects keep their key order. */
export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
/** A parsed JSON object. */
export type JsonObject = Map<string, JsonValue>;

const MAX_DEPTH = 64;

/**
 * Parses `text` as one JSON value. Whitespace may surround it; anything else
 * after it is an error.
 *
 * @param text the JSON text
 * @param op the operation, for errors (e.g. `"read safetensors header model.safetensors"`)
 * @throws {EdgeMoeError} `corrupt_data` naming the offset and what was expected.
 */
export function parseStrictJson(text: string, op: string): JsonValue {
  let pos = 0;
  const fail = (what: string): never => {
    const found = pos < text.length ? JSON.stringify(text.slice(pos, pos + 12)) : "the end of the text";
    throw new EdgeMoeError("corrupt_data", op, `invalid JSON at character ${pos}: expected ${what}, found ${found}`);
  };
  const skipWs = () => {
    while (pos < text.length) {
      const c = text.charCodeAt(pos);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) pos++;
      else break;
    }
  };
  const parseString = (): string => {
    if (text[pos] !== '"') fail("a string");
    const start = pos;
    pos++;
    let escaped = false;
    while (pos < text.length) {
      const c = text.charCodeAt(pos);
      if (c === 0x22) break;
      if (c < 0x20) fail("no control characters inside a string");
      if (c === 0x5c) {
        escaped = true;
        pos++;
        const e = text[pos];
        if (e === "u") {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(pos + 1, pos + 5))) fail("4 hex digits after \\u");
          pos += 4;
        } else if (e === undefined || !'"\\/bfnrt'.includes(e)) fail("a valid escape after \\");
      }
      pos++;
    }
    if (pos >= text.length) fail('a closing "');
    pos++;
    const raw = text.slice(start, pos);
    return escaped ? JSON.parse(raw) as string : raw.slice(1, -1);
  };
  const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
  const parseValue = (depth: number): JsonValue => {
    if (depth > MAX_DEPTH) fail(`nesting no deeper than ${MAX_DEPTH}`);
    skipWs();
    const c = text[pos];
    if (c === "{") {
      pos++;
      const obj: JsonObject = new Map();
      skipWs();
      if (text[pos] === "}") {
        pos++;
        return obj;
      }
      for (;;) {
        skipWs();
        const keyAt = pos;
        const key = parseString();
        if (obj.has(key)) {
          pos = keyAt;
          throw new EdgeMoeError("corrupt_data", op, `duplicate key ${JSON.stringify(key)} at character ${keyAt}`);
        }
        skipWs();
        if (text[pos] !== ":") fail('":"');
        pos++;
        obj.set(key, parseValue(depth + 1));
        skipWs();
        if (text[pos] === ",") pos++;
        else if (text[pos] === "}") {
          pos++;
          return obj;
        } else fail('"," or "}"');
      }
    }
    if (c === "[") {
      pos++;
      const arr: JsonValue[] = [];
      skipWs();
      if (text[pos] === "]") {
        pos++;
        return arr;
      }
      for (;;) {
        arr.push(parseValue(depth + 1));
        skipWs();
        if (text[pos] === ",") pos++;
        else if (text[pos] === "]") {
          pos++;
          return arr;
        } else fail('"," or "]"');
      }
    }
    if (c === '"') return parseString();
    for (const [word, value] of [["true", true], ["false", false], ["null", null]] as const) {
      if (text.startsWith(word, pos)) {
        pos += word.length;
        return value;
      }
    }
    NUMBER.lastIndex = pos;
    const m = NUMBER.exec(text);
    if (!m) return fail("a JSON value");
    pos += m[0].length;
    return Number(m[0]);
  };
  const value = parseValue(0);
  skipWs();
  if (pos !== text.length) fail("the end of the text");
  return value;
}

/** `true` when `v` is a JSON object. */
export function isJsonObject(v: JsonValue | undefined): v is JsonObject {
  return v instanceof Map;
}
