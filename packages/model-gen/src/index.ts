export { GraphBuilder, MIN_OPSET, MAX_OPSET, attr, type ModelInput, type SampleHint } from "./graph-builder.ts";
export { encodeModel, encodeModelBytes, type EncodeOptions } from "./onnx/encode.ts";
export { DataType, type ModelSpec } from "./onnx/types.ts";
export { Rng } from "./random.ts";
export {
  DEFAULT_OPSET,
  DEFAULT_SEED,
  FAMILIES,
  type GenerateOptions,
  type GeneratedModel,
  generateModel,
  generateModelBytes,
  resolveFamily,
  writeModelFile,
} from "./registry.ts";
export { type HostTensor, type TensorDType, type TensorData, concreteShape, dtypeOf, sampleInputs } from "./tensors.ts";
export { compareTensors, type Comparison } from "./compare.ts";
