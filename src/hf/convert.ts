/**
 * Hugging Face model directory → GGUF that llama.cpp loads: config.json gives
 * the architecture metadata, tokenizer.json the vocabulary, the safetensors
 * the tensors (renamed, experts stacked, Mixtral's Q/K rows permuted, 1-D
 * tensors and routers as F32, the rest kept as F32/F16/BF16). Tensor data is
 * streamed in bounded chunks, so memory stays small whatever the model size;
 * the output is written atomically by the GGUF writer.
 *
 * @module
 */
import { EdgeMoeError } from "../errors.ts";
import { GgmlType } from "../gguf/types.ts";
import type { GgufValue } from "../gguf/types.ts";
import { type GgufTensorSpec, writeGguf } from "../gguf/writer.ts";
import { SafetensorsModel } from "../safetensors/model.ts";
import type { SafetensorsDtype } from "../safetensors/reader.ts";
import { archMetadata, type HfModelConfig, parseHfConfig } from "./config.ts";
import { type GgufTensorPlan, isIgnoredHfTensor, planTensors, ropePermutation } from "./names.ts";
import { tokenizerMetadata } from "./tokenizer.ts";

/** Bytes per chunk streamed to the writer. */
const CHUNK_BYTES = 4 << 20;
const MAX_JSON_BYTES = 64 << 20;

/** Options of {@linkcode convertHfToGguf}. */
export interface HfConvertOptions {
  /** Replace an existing output file. */
  overwrite?: boolean;
  /** Called after each tensor is written (for progress). */
  onTensor?: (index: number, count: number, name: string) => void;
}

/** What {@linkcode convertHfToGguf} wrote. */
export interface HfConvertResult {
  /** The model's hyperparameters. */
  config: HfModelConfig;
  /** Tensors written. */
  tensors: number;
  /** Output size in bytes. */
  fileBytes: number;
}

const KEPT: Partial<Record<SafetensorsDtype, number>> = { F32: GgmlType.f32, F16: GgmlType.f16, BF16: GgmlType.bf16 };

/** Reads a small text file of the model directory; `undefined` if it does not exist. */
function readText(path: string, required: boolean): string | undefined {
  try {
    const size = Deno.statSync(path).size;
    if (size > MAX_JSON_BYTES) {
      throw new EdgeMoeError("corrupt_data", `read ${path}`, `${size} bytes, more than the limit of ${MAX_JSON_BYTES}`);
    }
    return new TextDecoder("utf-8", { fatal: true }).decode(Deno.readFileSync(path));
  } catch (e) {
    if (e instanceof EdgeMoeError) throw e;
    if (e instanceof Deno.errors.NotFound && !required) return undefined;
    if (e instanceof TypeError) throw new EdgeMoeError("corrupt_data", `read ${path}`, "not valid UTF-8", { cause: e });
    throw new EdgeMoeError("io", `read ${path}`, (e as Error).message, { cause: e });
  }
}

/** Reads and validates the config of the model in `dir`. */
export function readHfConfig(dir: string): HfModelConfig {
  return parseHfConfig(readText(`${dir}/config.json`, true)!, `${dir}/config.json`);
}

/** F16 or BF16 bytes → F32 bytes. */
function toF32(src: Uint8Array, dtype: SafetensorsDtype): Uint8Array {
  if (dtype === "F32") return src;
  const u16 = new Uint16Array(src.slice().buffer);
  const out = dtype === "F16" ? new Float32Array(new Float16Array(u16.buffer)) : new Float32Array(u16.length);
  if (dtype === "BF16") {
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < u16.length; i++) bits[i] = u16[i] << 16;
  }
  return new Uint8Array(out.buffer);
}

/** Checks every source of every plan (present, shape, dtype) and that no checkpoint tensor is left over. */
function checkSources(
  model: SafetensorsModel,
  plans: GgufTensorPlan[],
  cfg: HfModelConfig,
): Map<string, SafetensorsDtype> {
  const op = `convert ${model.dir}`;
  const dtypeOf = new Map<string, SafetensorsDtype>();
  const used = new Set<string>();
  for (const p of plans) {
    let dtype: SafetensorsDtype | undefined;
    for (const src of p.sources) {
      const t = model.get(src);
      if (!t) {
        throw new EdgeMoeError("corrupt_data", op, `missing tensor ${src} (needed for ${p.name} of a ${cfg.hfArch})`);
      }
      if (t.shape.join(",") !== p.sourceShape.join(",")) {
        throw new EdgeMoeError(
          "corrupt_data",
          op,
          `tensor ${src} has shape [${t.shape.join(", ")}], expected [${p.sourceShape.join(", ")}] from config.json`,
        );
      }
      if (KEPT[t.dtype] === undefined) {
        throw new EdgeMoeError("unsupported", op, `tensor ${src} is ${t.dtype}; only F32, F16 and BF16 are converted`);
      }
      if (dtype !== undefined && t.dtype !== dtype) {
        throw new EdgeMoeError(
          "corrupt_data",
          op,
          `tensor ${src} is ${t.dtype} but the other experts of ${p.name} are ${dtype}`,
        );
      }
      dtype = t.dtype;
      used.add(src);
    }
    dtypeOf.set(p.name, dtype!);
  }
  for (const name of model.tensors.keys()) {
    if (!used.has(name) && !isIgnoredHfTensor(name)) {
      throw new EdgeMoeError(
        "corrupt_data",
        op,
        `unexpected tensor ${name}: not part of a ${cfg.hfArch} with this config`,
      );
    }
  }
  return dtypeOf;
}

/** The chunks of one GGUF tensor, read from the checkpoint on demand. */
async function* tensorChunks(model: SafetensorsModel, p: GgufTensorPlan, dtype: SafetensorsDtype, f32: boolean) {
  if (p.permuteHeads !== undefined) {
    const rows = p.sourceShape[0];
    const rowBytes = model.get(p.sources[0])!.byteLength / rows;
    const order = ropePermutation(rows, p.permuteHeads);
    const perChunk = Math.max(1, Math.floor(CHUNK_BYTES / rowBytes));
    for (let r0 = 0; r0 < rows; r0 += perChunk) {
      const n = Math.min(perChunk, rows - r0);
      const chunk = new Uint8Array(n * rowBytes);
      for (let i = 0; i < n; i++) chunk.set(model.read(p.sources[0], order[r0 + i] * rowBytes, rowBytes), i * rowBytes);
      yield f32 ? toF32(chunk, dtype) : chunk;
    }
    return;
  }
  for (const src of p.sources) {
    const total = model.get(src)!.byteLength;
    for (let off = 0; off < total; off += CHUNK_BYTES) {
      const chunk = model.read(src, off, Math.min(CHUNK_BYTES, total - off));
      yield f32 ? toF32(chunk, dtype) : chunk;
    }
  }
}

/**
 * Converts the Hugging Face model in `dir` to a GGUF file at `out`.
 *
 * @throws {EdgeMoeError} for an unsupported architecture or dtype, a malformed
 * or incomplete checkpoint (before anything is written), an existing `out`
 * without `overwrite`, or an I/O failure (leaving no file at `out`).
 */
export async function convertHfToGguf(dir: string, out: string, opts: HfConvertOptions = {}): Promise<HfConvertResult> {
  const cfg = readHfConfig(dir);
  const tokJson = readText(`${dir}/tokenizer.json`, true)!;
  const tokCfg = readText(`${dir}/tokenizer_config.json`, false);
  const tokenizer = tokenizerMetadata(cfg, tokJson, tokCfg, dir);
  using model = SafetensorsModel.open(dir);
  const plans = planTensors(cfg, (n) => model.get(n) !== undefined);
  const dtypeOf = checkSources(model, plans, cfg);
  const specs: GgufTensorSpec[] = plans.map((p) => {
    const dtype = dtypeOf.get(p.name)!;
    const f32 = p.forceF32 && dtype !== "F32";
    return {
      name: p.name,
      type: p.forceF32 ? GgmlType.f32 : KEPT[dtype]!,
      dims: p.dims,
      data: () => tensorChunks(model, p, dtype, f32),
    };
  });
  const matrixTypes = plans.filter((p) => !p.forceF32).map((p) => dtypeOf.get(p.name));
  const fileType = matrixTypes.every((t) => t === "F32") ? 0 : matrixTypes.includes("BF16") ? 32 : 1;
  const name = dir.replace(/\/+$/, "").split("/").pop() ?? "model";
  const [archKey, ...hparams] = archMetadata(cfg);
  const metadata: [string, GgufValue][] = [
    archKey,
    ["general.name", { type: "string", value: name }],
    ["general.file_type", { type: "u32", value: fileType }],
    ...hparams,
    ...tokenizer,
  ];
  const result = await writeGguf(out, metadata, specs, {
    overwrite: opts.overwrite,
    onTensor: (i, n) => opts.onTensor?.(i, specs.length, n),
  });
  return { config: cfg, tensors: specs.length, fileBytes: result.fileBytes };
}
