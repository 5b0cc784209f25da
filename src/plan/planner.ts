/**
 * Choosing a quantization type per expert from measured costs.
 *
 * Each expert `i` has, per candidate type `t` (candidates ordered from fewest
 * to most bits), a byte size `bytes[i][t]` and a loss `loss[i][t]`: the mean KL
 * divergence of the model's output over the calibration tokens when that
 * expert alone is quantized to `t`. The mean is over all tokens, so an expert
 * that is rarely routed has a proportionally small loss: frequency is already
 * in the weight. A plan's expected loss is the sum over experts (the
 * first-order, independent-experts approximation).
 *
 * Two planners:
 * - `edgemoePlan`, the EdgeMoE paper's: two adjacent candidate types (the
 *   ones bracketing the budget), experts ranked by how much loss the lower
 *   type adds; the K least important get the lower type, the rest the
 *   higher; K is searched to meet the budget.
 * - `knapsackPlan`: a multiple-choice knapsack over every candidate type,
 *   solved exactly by dynamic programming over bytes (in units of the
 *   greatest common divisor of the sizes, coarsened with sizes rounded up
 *   when the table would be too large, so the budget still holds).
 *
 * @module
 */
import { EdgeMoeError } from "../errors.ts";

/** Costs of one expert per candidate type. */
export interface ExpertCosts {
  /** Bytes of the expert's three matrices at each candidate type. */
  bytes: readonly number[];
  /** Expected loss (mean KL over calibration tokens) at each candidate type. */
  loss: readonly number[];
}

/** What the plan must satisfy: at most `maxBytes` of experts, or at most `maxLoss` expected loss. */
export type PlanBudget = { maxBytes: number } | { maxLoss: number };

/** A chosen type per expert. */
export interface PlanChoice {
  /** Index into the candidates, per expert. */
  choice: number[];
  /** Sum of the chosen losses. */
  loss: number;
  /** Sum of the chosen bytes. */
  bytes: number;
}

const OP = "plan bitwidths";

function totals(experts: readonly ExpertCosts[], choice: number[]): PlanChoice {
  let loss = 0, bytes = 0;
  choice.forEach((t, i) => {
    loss += experts[i].loss[t];
    bytes += experts[i].bytes[t];
  });
  return { choice, loss, bytes };
}

function check(experts: readonly ExpertCosts[], budget: PlanBudget): number {
  if (experts.length === 0) throw new EdgeMoeError("invalid_argument", OP, "no experts to plan");
  const n = experts[0].bytes.length;
  experts.forEach((e, i) => {
    if (e.bytes.length !== n || e.loss.length !== n) {
      throw new EdgeMoeError(
        "invalid_argument",
        OP,
        `expert ${i} has costs for ${e.bytes.length} types, expected ${n}`,
      );
    }
    if (![...e.bytes, ...e.loss].every((v) => Number.isFinite(v) && v >= 0)) {
      throw new EdgeMoeError("invalid_argument", OP, `expert ${i} has a negative or non-finite cost`);
    }
  });
  const v = "maxBytes" in budget ? budget.maxBytes : budget.maxLoss;
  if (!(v >= 0 && Number.isFinite(v))) {
    throw new EdgeMoeError("invalid_argument", OP, `the budget must be a non-negative number, got ${v}`);
  }
  return n;
}

function unmet(what: string): EdgeMoeError {
  return new EdgeMoeError("invalid_argument", OP, `the budget cannot be met: ${what}`);
}

/**
 * EdgeMoE's planner: experts at two adjacent candidate types.
 *
 * With `maxBytes`: the pair brackets the budget (the largest type all experts
 * fit in, and the next), and K is the fewest experts at the lower type that
 * fit. With `maxLoss`: every adjacent pair is tried with the largest K whose
 * loss stays within the budget, and the plan with the fewest bytes wins.
 *
 * @throws {EdgeMoeError} `invalid_argument` when no plan meets the budget.
 */
export function edgemoePlan(experts: readonly ExpertCosts[], budget: PlanBudget): PlanChoice {
  const nTypes = check(experts, budget);
  const uniform = (t: number) => totals(experts, experts.map(() => t));
  // The K least important first: the loss the lower type adds over the higher.
  const ranked = (lo: number, hi: number) =>
    experts.map((_, i) => i).sort((a, b) =>
      (experts[a].loss[lo] - experts[a].loss[hi]) - (experts[b].loss[lo] - experts[b].loss[hi]) || a - b
    );
  const withK = (lo: number, hi: number, order: number[], k: number) => {
    const choice = experts.map(() => hi);
    for (let j = 0; j < k; j++) choice[order[j]] = lo;
    return totals(experts, choice);
  };
  if ("maxBytes" in budget) {
    if (uniform(nTypes - 1).bytes <= budget.maxBytes) return uniform(nTypes - 1);
    let lo = -1;
    for (let t = 0; t < nTypes; t++) if (uniform(t).bytes <= budget.maxBytes) lo = t;
    if (lo < 0) throw unmet(`the smallest type needs ${uniform(0).bytes} bytes, the budget is ${budget.maxBytes}`);
    const order = ranked(lo, lo + 1);
    for (let k = 0; k <= experts.length; k++) {
      const p = withK(lo, lo + 1, order, k);
      if (p.bytes <= budget.maxBytes) return p;
    }
    return uniform(lo);
  }
  let best: PlanChoice | undefined;
  if (uniform(nTypes - 1).loss <= budget.maxLoss) best = uniform(nTypes - 1);
  for (let lo = 0; lo + 1 < nTypes; lo++) {
    const order = ranked(lo, lo + 1);
    for (let k = experts.length; k >= 0; k--) {
      const p = withK(lo, lo + 1, order, k);
      if (p.loss <= budget.maxLoss) {
        if (!best || p.bytes < best.bytes || (p.bytes === best.bytes && p.loss < best.loss)) best = p;
        break;
      }
    }
  }
  if (!best) throw unmet(`even the largest type has loss ${uniform(nTypes - 1).loss} > ${budget.maxLoss}`);
  return best;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** Largest DP table (experts × byte units) the knapsack fills before coarsening its byte unit. */
export const KNAPSACK_MAX_CELLS = 50_000_000;

/**
 * The multiple-choice knapsack: one type per expert, least total loss within
 * `maxBytes` (or fewest bytes with loss within `maxLoss`), exact at the byte
 * unit used (the gcd of all sizes, or coarser with sizes rounded up when the
 * table would exceed `maxCells`).
 *
 * @throws {EdgeMoeError} `invalid_argument` when no plan meets the budget.
 */
export function knapsackPlan(
  experts: readonly ExpertCosts[],
  budget: PlanBudget,
  maxCells = KNAPSACK_MAX_CELLS,
): PlanChoice {
  const nTypes = check(experts, budget);
  const most = experts.reduce((s, e) => s + Math.max(...e.bytes), 0);
  const least = experts.reduce((s, e) => s + Math.min(...e.bytes), 0);
  const limit = "maxBytes" in budget ? Math.min(budget.maxBytes, most) : most;
  if (least > limit) throw unmet(`the smallest types need ${least} bytes, the budget is ${limit}`);
  let unit = experts.reduce((g, e) => e.bytes.reduce((h, b) => gcd(h, b), g), 0) || 1;
  const n = experts.length;
  if ((Math.floor(limit / unit) + 1) * n > maxCells) unit = Math.ceil((limit + 1) * n / maxCells);
  const cap = Math.floor(limit / unit);
  const w = experts.map((e) => e.bytes.map((b) => Math.ceil(b / unit)));
  // best[c] = least loss of the experts so far within c units; pick[i·(cap+1)+c] = type chosen for expert i.
  let best = new Float64Array(cap + 1);
  let next = new Float64Array(cap + 1);
  const pick = new Uint8Array(n * (cap + 1));
  for (let i = 0; i < n; i++) {
    const row = i * (cap + 1);
    for (let c = 0; c <= cap; c++) {
      let v = Infinity, arg = 0;
      for (let t = 0; t < nTypes; t++) {
        const wt = w[i][t];
        if (wt <= c) {
          const cand = best[c - wt] + experts[i].loss[t];
          if (cand < v) [v, arg] = [cand, t];
        }
      }
      next[c] = v;
      pick[row + c] = arg;
    }
    [best, next] = [next, best];
  }
  let c = cap;
  if ("maxLoss" in budget) {
    const tol = 1e-12 * Math.max(1, budget.maxLoss);
    if (!(best[cap] <= budget.maxLoss + tol)) {
      throw unmet(`the least loss reachable is ${best[cap]} > ${budget.maxLoss}`);
    }
    c = best.findIndex((v) => v <= budget.maxLoss + tol);
  } else if (!Number.isFinite(best[cap])) throw unmet(`no combination fits in ${limit} bytes`);
  const choice = new Array<number>(n);
  for (let i = n - 1; i >= 0; i--) {
    choice[i] = pick[i * (cap + 1) + c];
    c -= w[i][choice[i]];
  }
  return totals(experts, choice);
}
