/**
 * Typed access to parsed CLI flags, with errors that name the flag.
 *
 * @module
 */
import { EdgeMoeError } from "../errors.ts";
import type { Args } from "../std/cli.ts";

/** A required string flag. */
export function stringFlag(a: Args, name: string, usage: string): string {
  const v = a[name];
  if (typeof v !== "string" || v === "") {
    throw new EdgeMoeError("invalid_argument", "parse arguments", `--${name} is required\n\n${usage}`);
  }
  return v;
}

/** An optional integer flag ≥ `min`. */
export function intFlag(a: Args, name: string, fallback: number, min = 0): number {
  const v = a[name];
  if (v === undefined) return fallback;
  const n = Number(v);
  if (typeof v !== "string" || !Number.isSafeInteger(n) || n < min) {
    throw new EdgeMoeError("invalid_argument", "parse arguments", `--${name} must be an integer ≥ ${min}, got "${v}"`);
  }
  return n;
}

/** An optional number flag. */
export function numberFlag(a: Args, name: string): number | undefined {
  const v = a[name];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v !== "string" || v.trim() === "" || !Number.isFinite(n)) {
    throw new EdgeMoeError("invalid_argument", "parse arguments", `--${name} must be a number, got "${v}"`);
  }
  return n;
}

/** An optional flag restricted to `choices`. */
export function choiceFlag<T extends string>(a: Args, name: string, choices: readonly T[]): T | undefined {
  const v = a[name];
  if (v === undefined) return undefined;
  if (typeof v !== "string" || !(choices as readonly string[]).includes(v)) {
    throw new EdgeMoeError(
      "invalid_argument",
      "parse arguments",
      `--${name} must be one of ${choices.join(", ")}, got "${v}"`,
    );
  }
  return v as T;
}
