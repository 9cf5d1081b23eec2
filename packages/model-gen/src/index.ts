export { type Comparison, compareTensors } from "./compare.ts";
export { attr, GraphBuilder, MAX_OPSET, MIN_OPSET, type ModelInput, type SampleHint } from "./graph-builder.ts";
export { type EncodeOptions, encodeModel, encodeModelBytes } from "./onnx/encode.ts";
export { DataType, type ModelSpec } from "./onnx/types.ts";
export { Rng } from "./random.ts";
export {
  DEFAULT_OPSET,
  DEFAULT_SEED,
  FAMILIES,
  type GeneratedModel,
  type GenerateOptions,
  generateModel,
  generateModelBytes,
  resolveFamily,
  writeModelFile,
} from "./registry.ts";
export { concreteShape, dtypeOf, type HostTensor, sampleInputs, type TensorData, type TensorDType } from "./tensors.ts";
