/**
 * Hugging Face model directories: config.json, the HF → GGUF tensor names,
 * tokenizer.json → GGUF vocabulary, and the conversion to GGUF.
 *
 * @module
 */
export {
  archMetadata,
  type GgufArchitecture,
  HF_ARCHITECTURES,
  type HfArchitecture,
  type HfModelConfig,
  parseHfConfig,
} from "./config.ts";
export { convertHfToGguf, type HfConvertOptions, type HfConvertResult, readHfConfig } from "./convert.ts";
export { type GgufTensorPlan, isIgnoredHfTensor, planTensors, ropePermutation } from "./names.ts";
export { tokenizerMetadata, TokenType } from "./tokenizer.ts";
