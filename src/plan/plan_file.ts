/**
 * The bitwidth plan file written by `edgemoe plan` and read by
 * `edgemoe convert --plan`: versioned JSON, validated on load.
 *
 * ```json
 * { "format": "edgemoe.bitwidth-plan", "version": 1,
 *   "model": "model.gguf", "method": "knapsack", "budget": { "maxBytes": 123 },
 *   "nLayers": 2, "nExperts": 4, "candidates": ["q2_k", …],
 *   "types": [["q4_k", "q6_k", …], …],          // per layer, per expert
 *   "frequency": [[0.5, …], …], "sensitivity": { "tokens": 256, "kl": [[[…]]], "bytes": [[[…]]] },
 *   "plans": { "edgemoe": { "loss": …, "bytes": …, "bits": … }, "knapsack": { … } } }
 * ```
 *
 * @module
 */
import { EdgeMoeError } from "../errors.ts";
import { ggmlTypeByName } from "../gguf/types.ts";

/** The `format` field of a plan file. */
export const PLAN_FORMAT = "edgemoe.bitwidth-plan";
/** The plan file version this code writes and reads. */
export const PLAN_VERSION = 1;
const MAX_LAYERS = 1024, MAX_EXPERTS = 1024;

/** A planner's outcome, for the report. */
export interface PlanSummary {
  /** Expected loss: sum of the chosen experts' mean KL. */
  loss: number;
  /** Expert bytes. */
  bytes: number;
  /** Average bits per expert weight. */
  bits: number;
  /** Expected expert bytes read per token (bytes weighted by routing frequency). */
  bytesPerToken: number;
  /** The chosen type per layer and expert. */
  types: string[][];
}

/** A bitwidth plan. */
export interface BitwidthPlan {
  format: typeof PLAN_FORMAT;
  version: number;
  /** The model file measured (its name). */
  model: string;
  /** The planner whose types are used: `"edgemoe"` or `"knapsack"`. */
  method: string;
  /** The budget asked for. */
  budget: Record<string, number>;
  nLayers: number;
  nExperts: number;
  candidates: string[];
  /** `types[l][e]`: the type of expert e of layer l (its gate, up and down). */
  types: string[][];
  frequency: number[][];
  sensitivity: { tokens: number; kl: number[][][]; bytes: number[][][] };
  /** Both planners' outcomes. */
  plans: Record<string, PlanSummary>;
}

function fail(where: string, what: string): EdgeMoeError {
  return new EdgeMoeError("corrupt_data", "read plan", `${where}: field ${what}`);
}

function int(v: unknown, where: string, name: string, max: number): number {
  if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > max) {
    throw fail(where, `"${name}" must be an integer in 1..${max}, got ${JSON.stringify(v)}`);
  }
  return v as number;
}

function grid(v: unknown, where: string, name: string, rows: number, cols: number): unknown[][] {
  if (!Array.isArray(v) || v.length !== rows) {
    throw fail(where, `"${name}" must be an array of ${rows} layers, got ${Array.isArray(v) ? v.length : typeof v}`);
  }
  v.forEach((row, l) => {
    if (!Array.isArray(row) || row.length !== cols) {
      throw fail(
        where,
        `"${name}[${l}]" must list ${cols} experts, got ${Array.isArray(row) ? row.length : typeof row}`,
      );
    }
  });
  return v as unknown[][];
}

/**
 * Parses and validates a plan (`where` names the file in errors).
 *
 * @throws {EdgeMoeError} `corrupt_data` naming the first bad field.
 */
export function planFromJson(text: string, where: string): BitwidthPlan {
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(text);
  } catch (e) {
    throw new EdgeMoeError("corrupt_data", "read plan", `${where} is not JSON: ${(e as Error).message}`, { cause: e });
  }
  if (typeof j !== "object" || j === null || Array.isArray(j)) throw fail(where, "(root) must be an object");
  if (j.format !== PLAN_FORMAT) throw fail(where, `"format" must be "${PLAN_FORMAT}", got ${JSON.stringify(j.format)}`);
  if (j.version !== PLAN_VERSION) {
    throw fail(where, `"version" must be ${PLAN_VERSION}, got ${JSON.stringify(j.version)}`);
  }
  for (const k of ["model", "method"]) {
    if (typeof j[k] !== "string") throw fail(where, `"${k}" must be a string`);
  }
  const nLayers = int(j.nLayers, where, "nLayers", MAX_LAYERS);
  const nExperts = int(j.nExperts, where, "nExperts", MAX_EXPERTS);
  if (!Array.isArray(j.candidates) || j.candidates.length === 0) {
    throw fail(where, `"candidates" must be a non-empty array of type names`);
  }
  const known = (t: unknown, name: string) => {
    try {
      ggmlTypeByName(String(t));
    } catch {
      throw fail(where, `"${name}" has unknown type ${JSON.stringify(t)}`);
    }
    if (typeof t !== "string") throw fail(where, `"${name}" must be a type name, got ${JSON.stringify(t)}`);
  };
  (j.candidates as unknown[]).forEach((c, i) => known(c, `candidates[${i}]`));
  grid(j.types, where, "types", nLayers, nExperts).forEach((row, l) =>
    row.forEach((t, e) => known(t, `types[${l}][${e}]`))
  );
  grid(j.frequency, where, "frequency", nLayers, nExperts).forEach((row, l) =>
    row.forEach((f, e) => {
      if (typeof f !== "number" || !(f >= 0)) throw fail(where, `"frequency[${l}][${e}]" must be a number >= 0`);
    })
  );
  const s = j.sensitivity as Record<string, unknown> | undefined;
  if (typeof s !== "object" || s === null) throw fail(where, `"sensitivity" must be an object`);
  for (const k of ["kl", "bytes"]) {
    grid(s[k], where, `sensitivity.${k}`, nLayers, nExperts).forEach((row, l) =>
      row.forEach((v, e) => {
        const n = (j.candidates as unknown[]).length;
        if (!Array.isArray(v) || v.length !== n || !v.every((x) => typeof x === "number" && x >= 0)) {
          throw fail(where, `"sensitivity.${k}[${l}][${e}]" must be ${n} numbers >= 0`);
        }
      })
    );
  }
  if (typeof j.budget !== "object" || j.budget === null) throw fail(where, `"budget" must be an object`);
  if (typeof j.plans !== "object" || j.plans === null) throw fail(where, `"plans" must be an object`);
  return j as unknown as BitwidthPlan;
}

/** Serialises a plan (pretty-printed). */
export function planToJson(p: BitwidthPlan): string {
  return JSON.stringify(p, null, 1) + "\n";
}

/** Reads and validates a plan file. */
export function readPlan(path: string): BitwidthPlan {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    throw new EdgeMoeError("io", "read plan", `cannot read ${path}`, { cause: e });
  }
  return planFromJson(text, path);
}
