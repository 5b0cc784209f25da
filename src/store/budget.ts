/**
 * Sizes and the memory budget: what a model needs in RAM (resident weights,
 * KV cache, scratch) and how many expert slots fit in what is left.
 *
 * @module
 */
import { EdgeMoeError } from "../errors.ts";

const UNITS: Readonly<Record<string, number>> = {
  "": 1,
  B: 1,
  K: 1024,
  KB: 1000,
  KIB: 1024,
  M: 1024 ** 2,
  MB: 1000 ** 2,
  MIB: 1024 ** 2,
  G: 1024 ** 3,
  GB: 1000 ** 3,
  GIB: 1024 ** 3,
  T: 1024 ** 4,
  TB: 1000 ** 4,
  TIB: 1024 ** 4,
};

/**
 * Parses a size: bytes, or a number with a unit (`512MiB`, `4G`, `1.5 GiB`;
 * K/M/G and KiB/MiB/GiB are powers of 1024, KB/MB/GB of 1000).
 *
 * @throws {EdgeMoeError} `invalid_argument` naming the input.
 */
export function parseSize(text: string | number): number {
  if (typeof text === "number") {
    if (Number.isSafeInteger(text) && text > 0) return text;
    throw new EdgeMoeError("invalid_argument", "parse size", `expected a positive whole number of bytes, got ${text}`);
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = m ? UNITS[m[2].toUpperCase()] : undefined;
  if (!m || unit === undefined) {
    throw new EdgeMoeError(
      "invalid_argument",
      "parse size",
      `"${text}" is not a size; expected e.g. 4096, 512MiB, 4G or 1.5GiB`,
    );
  }
  const bytes = Math.floor(Number(m[1]) * unit);
  if (!(bytes > 0) || !Number.isSafeInteger(bytes)) {
    throw new EdgeMoeError("invalid_argument", "parse size", `"${text}" must be at least 1 byte and below 8 PiB`);
  }
  return bytes;
}

/** Formats bytes for people: `1.50 GiB`. */
export function formatSize(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = bytes, i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${Math.round(bytes)} B` : `${v.toFixed(2)} ${units[i]}`;
}

/** What a model needs besides expert slots, and the shape of the slots. */
export interface MemoryNeeds {
  /** Non-expert weights kept in RAM. */
  residentBytes: number;
  /** KV cache for the context. */
  kvBytes: number;
  /** Activations, logits, and the runtime's own overhead. */
  scratchBytes: number;
  /** Bytes of one slot (the largest expert part, with O_DIRECT slack). */
  slotBytes: number;
  /** Slots one expert occupies (1 for a pack, 3 for a plain GGUF). */
  partsPerExpert: number;
  /** Experts a layer uses at once: the fewest slots that can work is this × parts. */
  expertsPerToken: number;
  /** Every expert of the model: more slots than this × parts are never useful. */
  totalExperts: number;
}

/** The plan: how many slots, and the bytes of each part. */
export interface MemoryPlan {
  slotCount: number;
  slotBytes: number;
  /** Resident + KV + scratch. */
  fixedBytes: number;
  /** fixedBytes + slots. */
  totalBytes: number;
}

/**
 * Fits the expert slots into `budget`: as many as fit, at most one per expert.
 *
 * @throws {EdgeMoeError} `out_of_memory` stating the bytes needed, the smallest budget that works and what takes the space.
 */
export function planMemory(needs: MemoryNeeds, budget: number): MemoryPlan {
  const fixedBytes = needs.residentBytes + needs.kvBytes + needs.scratchBytes;
  const minSlots = needs.expertsPerToken * needs.partsPerExpert;
  const maxSlots = needs.totalExperts * needs.partsPerExpert;
  const smallest = fixedBytes + minSlots * needs.slotBytes;
  if (budget < smallest) {
    throw new EdgeMoeError(
      "out_of_memory",
      "plan memory",
      `a budget of ${formatSize(budget)} (${budget} bytes) cannot run this model: it needs at least ${
        formatSize(smallest)
      } ` +
        `(${smallest} bytes) = resident weights ${formatSize(needs.residentBytes)} + KV cache ${
          formatSize(needs.kvBytes)
        } + ` +
        `scratch ${formatSize(needs.scratchBytes)} + ${minSlots} expert slots of ${formatSize(needs.slotBytes)}; ` +
        `the smallest budget that works is ${smallest} bytes`,
    );
  }
  const slotCount = Math.min(
    maxSlots,
    Math.floor((budget - fixedBytes) / needs.slotBytes / needs.partsPerExpert) * needs.partsPerExpert,
  );
  return { slotCount, slotBytes: needs.slotBytes, fixedBytes, totalBytes: fixedBytes + slotCount * needs.slotBytes };
}

/** Memory the kernel says is available (MemAvailable), or undefined if unknown. */
export function availableMemory(): number | undefined {
  try {
    const m = /MemAvailable:\s+(\d+) kB/.exec(Deno.readTextFileSync("/proc/meminfo"));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}
