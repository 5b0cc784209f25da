/**
 * From measured sensitivities and a budget to a plan: both planners run, the
 * better one's types (lower expected loss, or fewer bytes under a loss
 * budget) are the plan's, and both outcomes are recorded for the report.
 *
 * @module
 */
import { EdgeMoeError } from "../errors.ts";
import type { Sensitivity } from "./measure.ts";
import { type BitwidthPlan, PLAN_FORMAT, PLAN_VERSION, type PlanSummary } from "./plan_file.ts";
import { edgemoePlan, type ExpertCosts, knapsackPlan, type PlanBudget, type PlanChoice } from "./planner.ts";

/** What the user asks for: average bits per expert weight, a KL budget, or expert bytes. */
export type BudgetRequest = { targetBits: number } | { maxKld: number } | { maxBytes: number };

/** The planners' cost table: experts in layer-major order. */
export function costsOf(s: Sensitivity): ExpertCosts[] {
  const out: ExpertCosts[] = [];
  for (let l = 0; l < s.nLayers; l++) {
    for (let e = 0; e < s.nExperts; e++) out.push({ bytes: s.bytes[l][e], loss: s.kl[l][e] });
  }
  return out;
}

/** The planner budget for a request. */
export function budgetOf(s: Sensitivity, r: BudgetRequest): PlanBudget {
  if ("maxKld" in r) return { maxLoss: r.maxKld };
  if ("maxBytes" in r) return { maxBytes: r.maxBytes };
  if (!(r.targetBits > 0)) {
    throw new EdgeMoeError("invalid_argument", "plan bitwidths", `--target-bits must be positive, got ${r.targetBits}`);
  }
  const weights = s.weightsPerExpert.reduce((a, w) => a + w * s.nExperts, 0);
  return { maxBytes: Math.floor((r.targetBits * weights) / 8) };
}

/** A planner's choice as types per layer and its figures. */
export function summarize(s: Sensitivity, p: PlanChoice): PlanSummary {
  const types: string[][] = [];
  let bytesPerToken = 0, weights = 0;
  for (let l = 0; l < s.nLayers; l++) {
    types.push([]);
    weights += s.weightsPerExpert[l] * s.nExperts;
    for (let e = 0; e < s.nExperts; e++) {
      const t = p.choice[l * s.nExperts + e];
      types[l].push(s.candidates[t]);
      bytesPerToken += s.frequency[l][e] * s.bytes[l][e][t];
    }
  }
  return { loss: p.loss, bytes: p.bytes, bits: (p.bytes * 8) / weights, bytesPerToken, types };
}

/**
 * Runs both planners on `s` under `request` and returns the plan file content
 * (types from `method`, default the knapsack).
 *
 * @throws {EdgeMoeError} `invalid_argument` when the budget cannot be met.
 */
export function makePlan(
  s: Sensitivity,
  request: BudgetRequest,
  model: string,
  method: "edgemoe" | "knapsack" = "knapsack",
): BitwidthPlan {
  const costs = costsOf(s), budget = budgetOf(s, request);
  const plans = {
    edgemoe: summarize(s, edgemoePlan(costs, budget)),
    knapsack: summarize(s, knapsackPlan(costs, budget)),
  };
  return {
    format: PLAN_FORMAT,
    version: PLAN_VERSION,
    model,
    method,
    budget: { ...request },
    nLayers: s.nLayers,
    nExperts: s.nExperts,
    candidates: s.candidates,
    types: plans[method].types,
    frequency: s.frequency,
    sensitivity: { tokens: s.tokens, kl: s.kl, bytes: s.bytes },
    plans,
  };
}
