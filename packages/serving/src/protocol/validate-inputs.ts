// Checks an inference request against a model's signature before any replica sees it, so a bad
// request costs no engine time and the client learns which tensor is wrong and how.
import type { Profile, TensorInfo } from "@kiln/engine";
import { badRequest } from "../errors.ts";
import { DTYPE_TO_V2 } from "./datatypes.ts";
import type { NamedTensor, RequestedOutput } from "./infer-codec.ts";

export interface ServingSignature {
  inputs: TensorInfo[];
  outputs: TensorInfo[];
  /** The engine's optimization profiles; a request must fit one of them. Empty: static shapes only. */
  profiles: Profile[];
}

const showShape = (shape: readonly (number | string)[]) => `[${shape.join(",")}]`;

// The signature's inputs by name, built once per signature object (deployments are cached, so
// once per deployment refresh rather than once per request).
const inputsByName = new WeakMap<ServingSignature, Map<string, TensorInfo>>();

export function validateInputs(inputs: NamedTensor[], signature: ServingSignature): void {
  let expected = inputsByName.get(signature);
  if (expected === undefined) {
    expected = new Map(signature.inputs.map((i) => [i.name, i]));
    inputsByName.set(signature, expected);
  }
  for (const tensor of inputs) {
    const info = expected.get(tensor.name);
    if (!info) {
      throw badRequest(
        `input '${tensor.name}' is not an input of this model (inputs: ${signature.inputs.map((i) => i.name).join(", ")})`,
      );
    }
    if (info.dtype !== tensor.dtype) {
      throw badRequest(
        `input '${tensor.name}': datatype ${DTYPE_TO_V2[tensor.dtype]} does not match the model's ${DTYPE_TO_V2[info.dtype]}`,
      );
    }
    if (info.shape) {
      if (info.shape.length !== tensor.shape.length) {
        throw badRequest(
          `input '${tensor.name}': shape ${showShape(tensor.shape)} has rank ${tensor.shape.length} but the model expects ${showShape(info.shape)}`,
        );
      }
      info.shape.forEach((dim, i) => {
        if (typeof dim === "number" && dim >= 0 && tensor.shape[i] !== dim) {
          throw badRequest(
            `input '${tensor.name}': dim ${i} is ${tensor.shape[i]} but the model expects ${dim} (shape ${showShape(info.shape ?? [])})`,
          );
        }
      });
    }
  }
  for (const info of signature.inputs) {
    if (!inputs.some((t) => t.name === info.name)) throw badRequest(`input '${info.name}' is missing`);
  }
  if (signature.profiles.length > 0 && !signature.profiles.some((p) => fitsProfile(inputs, p))) {
    // Name the first dim out of range of the first profile: that is what most clients need to fix.
    for (const tensor of inputs) {
      const range = signature.profiles[0]?.[tensor.name];
      if (!range) continue;
      for (let i = 0; i < tensor.shape.length; i++) {
        const d = tensor.shape[i] as number;
        if (d < (range.min[i] ?? d) || d > (range.max[i] ?? d)) {
          throw badRequest(
            `input '${tensor.name}': dim ${i} is ${d}, outside the engine's profile range ${range.min[i]}..${range.max[i]}`,
          );
        }
      }
    }
    throw badRequest("input shapes fit none of the engine's optimization profiles");
  }
}

export function fitsProfile(inputs: NamedTensor[], profile: Profile): boolean {
  return inputs.every((tensor) => {
    const range = profile[tensor.name];
    if (!range) return true;
    return tensor.shape.every((d, i) => d >= (range.min[i] ?? d) && d <= (range.max[i] ?? d));
  });
}

export function validateOutputs(outputs: RequestedOutput[] | undefined, signature: ServingSignature): void {
  for (const output of outputs ?? []) {
    if (!signature.outputs.some((o) => o.name === output.name)) {
      throw badRequest(
        `output '${output.name}' is not an output of this model (outputs: ${signature.outputs.map((o) => o.name).join(", ")})`,
      );
    }
  }
}
