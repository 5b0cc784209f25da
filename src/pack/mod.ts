/**
 * The pack: an expert-major GGUF with one checksummed, 4096-aligned blob per
 * (layer, expert). Format in format.ts.
 *
 * @module
 */
export { convertGgufToPack, type ConvertOptions } from "./convert.ts";
export {
  EXPERT_PARTS,
  type ExpertPart,
  expertTensorName,
  PACK_ALIGNMENT,
  PACK_FORMAT_VERSION,
  PACK_KEYS,
  type PackPlan,
  SOURCE_HASH_CHUNK,
} from "./format.ts";
export { type BlobTensor, type ExpertBlob, isPack, PackFile } from "./reader.ts";
export { type ExpertTensorSource, type PackSpec, type PackWriteOptions, writePack } from "./writer.ts";
