import type { KilnEngineError } from "@kiln/engine";

/**
 * What a user reads when a build fails, by the builder's error code: what went wrong and what to do.
 * Codes of problems a retry cannot fix are "final": the job is not retried.
 */
export function describeBuildFailure(error: KilnEngineError): { message: string; isFinal: boolean } {
  switch (error.code) {
    case "INVALID_MODEL":
      return {
        message: `The model could not be read: ${reason(error)}. Re-export it to ONNX and upload it as a new version.`,
        isFinal: true,
      };
    case "UNSUPPORTED_OP":
      return {
        message: `The model uses an operator Kiln cannot build yet: ${reason(error)}. Re-export it without that operator, or with another opset.`,
        isFinal: true,
      };
    case "INVALID_ARGUMENT":
    case "SHAPE_MISMATCH":
    case "DTYPE_MISMATCH":
      return {
        message:
          `The build options are not valid for this model or target: ${reason(error)}. ` +
          "Check the precision (CPU targets build FP32) and the profiles' shapes against the model's inputs.",
        isFinal: true,
      };
    case "OUT_OF_MEMORY":
      return {
        message: `The build ran out of memory: ${reason(error)}. Lower the profiles' max shapes (batch size, sequence length) and build again.`,
        isFinal: true,
      };
    case "ENGINE_MISMATCH":
    case "ADDON_NOT_BUILT":
      return { message: `This worker cannot build for the requested target: ${reason(error)}.`, isFinal: false };
    case "CANCELLED":
      return { message: "Canceled by a user", isFinal: true };
    case "INTERNAL":
      return {
        message: `Kiln's builder failed unexpectedly: ${reason(error)}. Retry the build; if it fails again, report it with the build id.`,
        isFinal: false,
      };
  }
}

/** The builder's reason, once (some native messages repeat themselves as "reason: reason"), without a final period. */
function reason(error: KilnEngineError): string {
  const text = error.message.trim().replace(/\.$/, "");
  const half = (text.length - 2) / 2;
  if (Number.isInteger(half) && text.slice(0, half) === text.slice(half + 2) && text.slice(half, half + 2) === ": ") {
    return text.slice(0, half);
  }
  return text;
}
