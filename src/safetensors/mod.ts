/**
 * Safetensors: the hardened single-file reader and the (possibly sharded) model directory.
 *
 * @module
 */
export {
  parseSafetensorsHeader,
  parseSafetensorsPrefix,
  SAFETENSORS_DTYPE_BYTES,
  SAFETENSORS_MAX_HEADER_BYTES,
  type SafetensorsDtype,
  SafetensorsFile,
  type SafetensorsHeader,
  type SafetensorsTensor,
} from "./reader.ts";
export { SAFETENSORS_INDEX, SAFETENSORS_SINGLE, SafetensorsModel } from "./model.ts";
export { isJsonObject, type JsonObject, type JsonValue, parseStrictJson } from "./json.ts";
