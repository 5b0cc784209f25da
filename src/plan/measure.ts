/**
 * Measuring each expert's sensitivity to quantization: the model's output
 * distribution on calibration windows with one expert quantized to a
 * candidate type (from its original weights, dequantized first if stored
 * quantized) and every other weight as stored, compared by KL divergence
 * with the unmodified model (whose log-probabilities are recorded once).
 *
 * Cost: one baseline pass, then per expert and candidate one pass over only
 * the windows in which the baseline routed a token to that expert (elsewhere
 * the output is provably unchanged). `measureCost` states the number of
 * token evaluations before any is run.
 *
 * @module
 */
import { EdgeMoeError } from "../errors.ts";
import type { GgmlTypeName, NativeLibrary } from "../../ffi/native.ts";
import { ggmlTypeById, ggmlTypeByName, type GgmlTypeInfo, tensorBytes, typeForRows } from "../gguf/types.ts";
import { MoeModel } from "../models/model.ts";
import { matrixShape } from "../models/ops.ts";
import {
  type ExpertSource,
  type ExpertWeights,
  type ModelWeights,
  residentExperts,
  type TensorData,
} from "../models/weights.ts";
import { ProfileBuilder } from "../predictor/predictor.ts";
import { type BaseLogProbs, baseLogProbs, kld, type LogitsSource, type Windows } from "../quality/quality.ts";

/** The candidate types of the issue, fewest bits first. */
export const DEFAULT_CANDIDATES: readonly GgmlTypeName[] = ["q2_k", "q3_k", "q4_k", "q5_k", "q6_k", "q8_0"];

/** Per expert and candidate type: what quantizing that expert alone costs. */
export interface Sensitivity {
  /** Candidate type names, fewest bits first. */
  candidates: string[];
  /** Layers with routed experts. */
  nLayers: number;
  /** Experts per layer. */
  nExperts: number;
  /** Calibration tokens scored. */
  tokens: number;
  /** `frequency[l][e]`: fraction of calibration tokens routed to expert e of layer l. */
  frequency: number[][];
  /** `kl[l][e][t]`: mean KL (nats, over all scored tokens) with expert (l, e) alone at candidate t. */
  kl: number[][][];
  /** `bytes[l][e][t]`: bytes of the expert's three matrices at candidate t. */
  bytes: number[][][];
  /** Weights (elements) in one expert's three matrices, per layer. */
  weightsPerExpert: number[];
}

/** Rows × cols of f32 from a tensor of any type the library knows. */
export function toF32(lib: NativeLibrary, t: TensorData): Float32Array {
  const { rows, cols } = matrixShape(t);
  const info = ggmlTypeById(t.type);
  if (!info) throw new EdgeMoeError("unsupported", "dequantize", `tensor ${t.name} has unknown GGML type ${t.type}`);
  const data = t.data.byteOffset % 4 === 0 ? t.data : t.data.slice();
  return lib.dequantize(info.name as GgmlTypeName, data, rows * cols);
}

function fitted(t: TensorData, type: string): GgmlTypeInfo {
  const info = typeForRows(type, matrixShape(t).cols);
  if (!info) {
    throw new EdgeMoeError(
      "invalid_argument",
      "requantize",
      `type ${type} (and its fallback) cannot hold ${t.name}'s rows of ${matrixShape(t).cols}`,
    );
  }
  return info;
}

/**
 * `t` requantized to `type` (or llama.cpp's fallback when its rows do not
 * fill the type's blocks, see `typeForRows`) from its f32 values; unchanged
 * if already that type.
 */
export function requantize(lib: NativeLibrary, t: TensorData, type: string): TensorData {
  const info = fitted(t, type);
  if (info.id === t.type) return t;
  return { name: t.name, type: info.id, dims: t.dims, data: lib.quantize(info.name as GgmlTypeName, toF32(lib, t)) };
}

/** Bytes of `t` requantized to `type`. */
function bytesAs(t: TensorData, type: string): number {
  const { rows, cols } = matrixShape(t);
  return rows * Number(tensorBytes(fitted(t, type), BigInt(cols)));
}

/** A `LogitsSource` over a `MoeModel` (positions counted here). */
export function modelLogits(model: MoeModel): LogitsSource {
  let pos = 0;
  return {
    nVocab: model.hp.nVocab,
    reset() {
      pos = 0;
    },
    next(token) {
      return model.forward(token, pos++);
    },
  };
}

/** Options of {@linkcode measureSensitivity}. */
export interface MeasureOptions {
  /** Candidate types (default `DEFAULT_CANDIDATES`), fewest bits first. */
  candidates?: readonly string[];
  /** Progress: `done` of `total` token evaluations. */
  onProgress?: (done: number, total: number) => void;
}

/**
 * Measures every expert of `weights` at every candidate type on `windows`.
 *
 * @throws {EdgeMoeError} `invalid_argument` for an unknown candidate or one
 *   whose blocks do not fit the experts' rows.
 */
export function measureSensitivity(
  lib: NativeLibrary,
  weights: ModelWeights,
  windows: Windows,
  opts: MeasureOptions = {},
): Sensitivity {
  const op = "measure sensitivity";
  const candidates = [...(opts.candidates ?? DEFAULT_CANDIDATES)];
  const original = residentExperts(weights);
  const override = new Map<number, ExpertWeights>();
  let key = -1;
  const source: ExpertSource = {
    acquire(layer, ids) {
      const lease = original.acquire(layer, ids);
      if (key < 0) return lease;
      const experts = lease.experts.map((e, i) => override.get(layer * 65536 + ids[i]) ?? e);
      return { experts, [Symbol.dispose]: () => lease[Symbol.dispose]() };
    },
    prefetch() {},
  };
  const used: Set<number>[] = windows.tokens.map(() => new Set());
  let current = -1, collecting = true;
  const profile = { builder: undefined as ProfileBuilder | undefined };
  const model = new MoeModel(weights, lib, {
    nCtx: windows.nCtx,
    experts: source,
    onRoute: (l, ids) => {
      if (!collecting) return;
      profile.builder!.record(l, ids);
      for (const id of ids) used[current].add(l * 65536 + id);
    },
  });
  const { nLayer, nExpert } = model.hp;
  profile.builder = new ProfileBuilder(nLayer, nExpert);
  for (const c of candidates) {
    try {
      ggmlTypeByName(c);
    } catch (e) {
      throw new EdgeMoeError("invalid_argument", op, `unknown candidate type "${c}"`, { cause: e });
    }
  }
  const perExpert = Array.from({ length: nLayer }, (_, l) => original.acquire(l, Uint32Array.of(0)).experts[0]);
  const bytes = perExpert.map((e, l) =>
    candidates.map((c) => {
      const parts = [e.gate, e.up, e.down].map((t) => bytesAs(t, c));
      if (parts.some((b) => b === undefined)) {
        throw new EdgeMoeError(
          "invalid_argument",
          op,
          `candidate ${c} does not fit layer ${l}'s expert rows (${
            [e.gate, e.up, e.down].map((t) => t.dims[0])
          } columns)`,
        );
      }
      return parts.reduce((a, b) => a! + b!, 0)!;
    })
  );
  const logits = modelLogits(model);
  // Windows are counted by the onWindow callbacks; `current` tracks the window being routed.
  const wrapped: LogitsSource = {
    nVocab: logits.nVocab,
    reset() {
      current++;
      logits.reset();
    },
    next: (t) => logits.next(t),
  };
  const base: BaseLogProbs = baseLogProbs(wrapped, windows, (done) => opts.onProgress?.(done * (windows.nCtx - 1), 0));
  collecting = false;
  const prof = profile.builder.profile();
  let work = 0;
  for (let l = 0; l < nLayer; l++) {
    for (let e = 0; e < nExpert; e++) {
      work += used.filter((s) => s.has(l * 65536 + e)).length * candidates.length * (windows.nCtx - 1);
    }
  }
  let done = 0;
  opts.onProgress?.(0, work);
  const kl = Array.from({ length: nLayer }, (_, l) =>
    Array.from({ length: nExpert }, (_, e) => {
      const k = l * 65536 + e;
      const orig = original.acquire(l, Uint32Array.of(e)).experts[0];
      return candidates.map((c) => {
        if (!used.some((s) => s.has(k))) return 0;
        override.clear();
        override.set(k, {
          gate: requantize(lib, orig.gate, c),
          up: requantize(lib, orig.up, c),
          down: requantize(lib, orig.down, c),
        });
        key = k;
        const r = kld(logits, base, () => {
          done += windows.nCtx - 1;
          opts.onProgress?.(done, work);
        }, (w) => !used[w].has(k));
        key = -1;
        return r.mean;
      });
    }));
  const per = (e: ExpertWeights) =>
    [e.gate, e.up, e.down].reduce((s, t) => s + matrixShape(t).rows * matrixShape(t).cols, 0);
  return {
    candidates,
    nLayers: nLayer,
    nExperts: nExpert,
    tokens: base.perWindow.length * (windows.nCtx - 1 - windows.first),
    frequency: prof.frequency.map((f) => Array.from(f, (v) => v / Math.max(1, prof.tokens))),
    kl,
    bytes: bytes.map((b) => Array.from({ length: nExpert }, () => b)),
    weightsPerExpert: perExpert.map(per),
  };
}
