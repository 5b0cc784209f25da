/**
 * GGUF: the reader, the writer and the GGML type table.
 *
 * @module
 */
export {
  type ArrayOf,
  type ByteSource,
  checkAlignment,
  DEFAULT_ALIGNMENT,
  GgufFile,
  type GgufTensorInfo,
  MAX_ARRAY_LEN,
  MAX_DIMS,
  MAX_KV,
  MAX_STRING_BYTES,
  MAX_TENSOR_NAME_BYTES,
  MAX_TENSORS,
  memorySource,
} from "./reader.ts";
export {
  type GgufTensorSpec,
  type GgufWriteOptions,
  type GgufWriteResult,
  type TensorData,
  writeGguf,
} from "./writer.ts";
export {
  GGML_TYPES,
  GgmlType,
  ggmlTypeById,
  ggmlTypeByName,
  type GgmlTypeInfo,
  type GgufArrayItemType,
  type GgufArrayValue,
  type GgufBigIntType,
  type GgufNumberType,
  type GgufTypedArrays,
  type GgufValue,
  GgufValueType,
  type GgufValueTypeName,
  tensorBytes,
} from "./types.ts";
