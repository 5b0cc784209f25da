/**
 * edgemoe: run Mixture-of-Experts language models on machines that do not have
 * the memory for them.
 *
 * @example
 * ```ts
 * import { NativeLibrary } from "@edgemoe/edgemoe";
 * using lib = NativeLibrary.open();
 * console.log(lib.variant, lib.dotF32(new Float32Array([1, 2]), new Float32Array([3, 4])));
 * ```
 *
 * @module
 */
export { EdgeMoeError, type EdgeMoeErrorCode, type EdgeMoeErrorOptions } from "./src/errors.ts";
export { NativeLibrary } from "./ffi/native.ts";
export type { LoadOptions } from "./ffi/load.ts";
export { VERSION } from "./src/version.ts";
export {
  type ArrayOf,
  GGML_TYPES,
  GgmlType,
  ggmlTypeById,
  ggmlTypeByName,
  type GgmlTypeInfo,
  type GgufArrayItemType,
  type GgufArrayValue,
  type GgufBigIntType,
  GgufFile,
  type GgufNumberType,
  type GgufTensorInfo,
  type GgufTensorSpec,
  type GgufTypedArrays,
  type GgufValue,
  GgufValueType,
  type GgufValueTypeName,
  type GgufWriteOptions,
  type GgufWriteResult,
  type TensorData,
  writeGguf,
} from "./src/gguf/mod.ts";
export {
  type BlobTensor,
  convertGgufToPack,
  type ConvertOptions,
  EXPERT_PARTS,
  type ExpertBlob,
  type ExpertPart,
  expertTensorName,
  type ExpertTensorSource,
  PACK_ALIGNMENT,
  PACK_FORMAT_VERSION,
  PackFile,
  type PackPlan,
  type PackSpec,
  type PackWriteOptions,
  writePack,
} from "./src/pack/mod.ts";
export {
  SAFETENSORS_DTYPE_BYTES,
  type SafetensorsDtype,
  SafetensorsFile,
  SafetensorsModel,
  type SafetensorsTensor,
} from "./src/safetensors/mod.ts";
export {
  convertHfToGguf,
  type GgufArchitecture,
  HF_ARCHITECTURES,
  type HfArchitecture,
  type HfConvertOptions,
  type HfConvertResult,
  type HfModelConfig,
  readHfConfig,
} from "./src/hf/mod.ts";
export type { DecodeOptions, EncodeOptions, StreamDecoder, Tokenizer, TokenKind } from "./src/types.ts";
export {
  type GgufMetadataSource,
  type GgufTokenizerMetadata,
  specFromGguf,
  specFromHf,
  tokenizerFromGguf,
  tokenizerFromGgufFile,
  tokenizerFromHf,
  type TokenizerSpec,
  VocabTokenizer,
} from "./src/tokenizer/mod.ts";
export {
  type ChatMessage,
  type ChatRenderOptions,
  ChatTemplate,
  type RenderLimits,
} from "./src/template/chat_template.ts";
export {
  type Candidates,
  DEFAULT_SAMPLER_PARAMS,
  type ResolvedSamplerParams,
  resolveSamplerParams,
  Sampler,
  type SamplerOptions,
  type SamplerParams,
} from "./src/sampler/sampler.ts";
export {
  createEngine,
  Engine,
  type EngineOptions,
  type EngineStats,
  type ExpertStoreKind,
  type GenerateChunk,
  type GeneratedToken,
  type GenerateInput,
  type GenerateOptions,
  greedy,
  type StreamOptions,
} from "./src/engine.ts";
export { type StoreBackend } from "./ffi/slot_reader.ts";
export { type ExpertStoreStats } from "./src/store/expert_store.ts";
export { type PredictorStats, type RoutingProfile } from "./src/predictor/predictor.ts";
export { formatSize, parseSize } from "./src/store/budget.ts";
export { type GgmlTypeName, type MatmulItem, ThreadPool } from "./ffi/native.ts";
