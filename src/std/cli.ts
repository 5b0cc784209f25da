/**
 * Command-line parsing with `@std/cli`'s `parseArgs` shape. JSR is not
 * reachable here, so it is built on `node:util`'s `parseArgs`; unlike
 * `@std/cli`, unknown flags are an error (a typo must not be ignored).
 *
 * @module
 */
import { parseArgs as nodeParseArgs } from "node:util";
import { EdgeMoeError } from "../errors.ts";

/** What flags a command takes. */
export interface ParseOptions {
  /** Flags that take a value. */
  string?: readonly string[];
  /** Flags that take no value. */
  boolean?: readonly string[];
  /** Short and alternate names: `{ m: "model" }`. */
  alias?: Readonly<Record<string, string>>;
  /** Values of flags not given. */
  default?: Readonly<Record<string, string | boolean>>;
}

/** Parsed flags by long name, and positionals under `_`. */
export interface Args {
  /** Positional arguments. */
  _: string[];
  /** Flag values by long name. */
  [flag: string]: string | boolean | undefined | string[];
}

/**
 * Parses `args` (e.g. `Deno.args`).
 *
 * @throws {EdgeMoeError} `invalid_argument` naming an unknown flag or a missing value.
 */
export function parseArgs(args: readonly string[], opts: ParseOptions = {}): Args {
  type NodeOpt = { type: "string" | "boolean"; short?: string };
  const options: Record<string, NodeOpt> = {};
  for (const s of opts.string ?? []) options[s] = { type: "string" };
  for (const b of opts.boolean ?? []) options[b] = { type: "boolean" };
  const longAliases: Record<string, string> = {};
  for (const [alias, name] of Object.entries(opts.alias ?? {})) {
    const target = options[name];
    if (!target) throw new Error(`alias ${alias} names unknown flag ${name}`);
    if (alias.length === 1) target.short = alias;
    else {
      options[alias] = { type: target.type };
      longAliases[alias] = name;
    }
  }
  let parsed;
  try {
    parsed = nodeParseArgs({ args: [...args], options, strict: true, allowPositionals: true });
  } catch (e) {
    throw new EdgeMoeError("invalid_argument", "parse arguments", (e as Error).message, { cause: e });
  }
  const out: Args = { _: parsed.positionals };
  for (const [k, v] of Object.entries(opts.default ?? {})) out[k] = v;
  for (const [k, v] of Object.entries(parsed.values)) {
    out[longAliases[k] ?? k] = v as string | boolean;
  }
  return out;
}
