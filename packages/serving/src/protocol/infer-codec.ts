// KServe v2 inference requests and responses, JSON and Triton's binary tensor extension: the JSON
// header comes first (its length in Inference-Header-Content-Length), raw tensor bytes follow in order.
import type { DType, Tensor } from "@kiln/engine";
import { badRequest } from "../errors.ts";
import { DTYPE_TO_V2, isV2Datatype, V2_TO_DTYPE } from "./datatypes.ts";
import { fromBinaryData, fromJsonData, toBinaryData, toJsonData } from "./tensor-data.ts";

export type NamedTensor = Tensor & { name: string };

export interface RequestedOutput {
  name: string;
  /** True: raw bytes after the JSON header; false: JSON data; undefined: the request's default. */
  binary?: boolean;
}

export interface InferRequest {
  id?: string;
  inputs: NamedTensor[];
  /** Absent: every output of the model. */
  outputs?: RequestedOutput[];
  /** parameters.binary_data_output: outputs not listed come back binary. */
  binaryOutputs: boolean;
  /**
   * Set by decodeInferRequest when every input came as binary data: the body can then be passed on
   * to a worker as it is (its JSON header is already valid KServe v2) instead of re-encoded.
   */
  binaryInputsOnly?: boolean;
}

export interface InferResponse {
  modelName: string;
  modelVersion?: string;
  id?: string;
  outputs: NamedTensor[];
}

export interface EncodedBody {
  body: Buffer;
  /** Set when the body carries binary tensors: the value of Inference-Header-Content-Length. */
  headerLength?: number;
}

const MAX_RANK = 16;

type WireTensor = { name?: unknown; shape?: unknown; datatype?: unknown; parameters?: unknown; data?: unknown };

function parseHeader(
  body: Buffer,
  headerLength: number | undefined,
): { header: Record<string, unknown>; rest: Buffer } {
  if (headerLength !== undefined) {
    if (!Number.isInteger(headerLength) || headerLength < 0 || headerLength > body.byteLength) {
      throw badRequest(
        `Inference-Header-Content-Length ${headerLength} does not fit a body of ${body.byteLength} bytes`,
      );
    }
  }
  const end = headerLength ?? body.byteLength;
  let header: unknown;
  try {
    header = JSON.parse(body.subarray(0, end).toString("utf8"));
  } catch (error) {
    throw badRequest(`request body is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    throw badRequest("request body must be a JSON object");
  }
  return { header: header as Record<string, unknown>, rest: body.subarray(end) };
}

function parseShape(name: string, shape: unknown): number[] {
  if (!Array.isArray(shape) || shape.length > MAX_RANK) {
    throw badRequest(`input '${name}': "shape" must be an array of at most ${MAX_RANK} dims`);
  }
  return shape.map((d, i) => {
    if (typeof d !== "number" || !Number.isSafeInteger(d) || d < 0) {
      throw badRequest(`input '${name}': dim ${i} of shape ${JSON.stringify(shape)} is not a non-negative integer`);
    }
    return d;
  });
}

function binarySize(name: string, parameters: unknown, kind: "input" | "output"): number | undefined {
  if (parameters === undefined) return undefined;
  if (typeof parameters !== "object" || parameters === null)
    throw badRequest(`${kind} '${name}': "parameters" must be an object`);
  const size = (parameters as Record<string, unknown>).binary_data_size;
  if (size === undefined) return undefined;
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) {
    throw badRequest(`${kind} '${name}': binary_data_size must be a non-negative integer`);
  }
  return size;
}

/** Decodes an inference request body. Every error names the tensor and what is wrong with it. */
export function decodeInferRequest(body: Buffer, headerLength?: number): InferRequest {
  const { header, rest } = parseHeader(body, headerLength);
  if (!Array.isArray(header.inputs) || header.inputs.length === 0) {
    throw badRequest('request needs a non-empty "inputs" array');
  }
  let offset = 0;
  let jsonInputs = 0;
  // Duplicate names are possible only with several inputs (most requests have one).
  const seen = header.inputs.length > 1 ? new Set<string>() : undefined;
  const inputs = (header.inputs as WireTensor[]).map((wire, index): NamedTensor => {
    if (typeof wire !== "object" || wire === null || typeof wire.name !== "string" || wire.name === "") {
      throw badRequest(`inputs[${index}] needs a "name" string`);
    }
    const name = wire.name;
    if (seen) {
      if (seen.has(name)) throw badRequest(`input '${name}' appears twice`);
      seen.add(name);
    }
    if (!isV2Datatype(wire.datatype)) {
      throw badRequest(`input '${name}': datatype ${JSON.stringify(wire.datatype)} is not a KServe v2 datatype`);
    }
    const dtype: DType = V2_TO_DTYPE[wire.datatype];
    const shape = parseShape(name, wire.shape);
    const count = shape.reduce((n, d) => n * d, 1);
    const size = binarySize(name, wire.parameters, "input");
    if (size !== undefined) {
      if (wire.data !== undefined) throw badRequest(`input '${name}': has both "data" and binary_data_size`);
      if (offset + size > rest.byteLength) {
        throw badRequest(`input '${name}': binary_data_size ${size} runs past the end of the body`);
      }
      const data = fromBinaryData(name, dtype, rest.subarray(offset, offset + size), count);
      offset += size;
      return { name, dtype, shape, data };
    }
    if (wire.data === undefined) throw badRequest(`input '${name}': needs "data" or parameters.binary_data_size`);
    jsonInputs++;
    const data = fromJsonData(name, dtype, wire.data);
    if (data.length !== count) {
      throw badRequest(
        `input '${name}': shape [${shape.join(",")}] needs ${count} elements but data has ${data.length}`,
      );
    }
    return { name, dtype, shape, data };
  });
  if (offset !== rest.byteLength) {
    throw badRequest(`body has ${rest.byteLength - offset} bytes of binary data that no input claims`);
  }

  const parameters = (header.parameters ?? {}) as Record<string, unknown>;
  const binaryOutputs = parameters.binary_data_output === true;
  let outputs: RequestedOutput[] | undefined;
  if (header.outputs !== undefined) {
    if (!Array.isArray(header.outputs)) throw badRequest('"outputs" must be an array');
    outputs = (header.outputs as WireTensor[]).map((wire, index) => {
      if (typeof wire !== "object" || wire === null || typeof wire.name !== "string") {
        throw badRequest(`outputs[${index}] needs a "name" string`);
      }
      const p = wire.parameters as Record<string, unknown> | undefined;
      const binary = p?.binary_data;
      if (binary !== undefined && typeof binary !== "boolean") {
        throw badRequest(`output '${wire.name}': parameters.binary_data must be a boolean`);
      }
      return { name: wire.name, binary };
    });
  }
  const id = typeof header.id === "string" ? header.id : undefined;
  return { id, inputs, outputs, binaryOutputs, binaryInputsOnly: jsonInputs === 0 };
}

/** Encodes a request with every input as binary data (what the gateway sends a worker, and the SDK's binary mode). */
export function encodeInferRequest(
  request: { id?: string; inputs: NamedTensor[]; outputs?: RequestedOutput[]; binaryOutputs?: boolean },
  options: { binaryInputs: boolean } = { binaryInputs: true },
): EncodedBody {
  const chunks: Uint8Array[] = [];
  const inputs = request.inputs.map((t) => {
    const wire: Record<string, unknown> = { name: t.name, shape: t.shape, datatype: DTYPE_TO_V2[t.dtype] };
    if (options.binaryInputs) {
      const bytes = toBinaryData(t.dtype, t.data);
      chunks.push(bytes);
      wire.parameters = { binary_data_size: bytes.byteLength };
    } else {
      wire.data = toJsonData(t.dtype, t.data);
    }
    return wire;
  });
  const header: Record<string, unknown> = { inputs };
  if (request.id !== undefined) header.id = request.id;
  if (request.outputs) {
    header.outputs = request.outputs.map((o) =>
      o.binary === undefined ? { name: o.name } : { name: o.name, parameters: { binary_data: o.binary } },
    );
  }
  if (request.binaryOutputs) header.parameters = { binary_data_output: true };
  return withBinary(header, chunks, options.binaryInputs);
}

/**
 * Encodes a response. `binary(name)` says which outputs travel as raw bytes; the body is plain JSON
 * (no Inference-Header-Content-Length) when none does.
 */
export function encodeInferResponse(response: InferResponse, binary: (name: string) => boolean): EncodedBody {
  const chunks: Uint8Array[] = [];
  const outputs = response.outputs.map((t) => {
    const wire: Record<string, unknown> = { name: t.name, datatype: DTYPE_TO_V2[t.dtype], shape: t.shape };
    if (binary(t.name)) {
      const bytes = toBinaryData(t.dtype, t.data);
      chunks.push(bytes);
      wire.parameters = { binary_data_size: bytes.byteLength };
    } else {
      wire.data = toJsonData(t.dtype, t.data);
    }
    return wire;
  });
  const header: Record<string, unknown> = { model_name: response.modelName };
  if (response.modelVersion !== undefined) header.model_version = response.modelVersion;
  if (response.id !== undefined) header.id = response.id;
  header.outputs = outputs;
  return withBinary(header, chunks, chunks.length > 0);
}

/** encodeInferResponse's `binary` for answers with every output in binary. */
export const allBinary = () => true;
const noneBinary = () => false;

/**
 * The client's answer to `request`: the outputs it asked for (all when it named none), each as
 * JSON data or binary as it asked, named by the model's name and version and carrying its id. The
 * worker encodes it (kiln-mux/2), so the gateway passes the bytes on; the gateway encodes it only
 * for answers from workers that do not (the plain HTTP hop).
 */
export function encodeClientResponse(
  request: Pick<InferRequest, "id" | "outputs" | "binaryOutputs">,
  model: { name: string; version?: string },
  outputs: NamedTensor[],
): EncodedBody {
  const wanted = request.outputs;
  return encodeInferResponse(
    {
      modelName: model.name,
      modelVersion: model.version,
      id: request.id,
      outputs: wanted ? outputs.filter((o) => wanted.some((w) => w.name === o.name)) : outputs,
    },
    // Module-level functions in the common case: a named closure per request costs a name definition under tsx.
    wanted
      ? (name) => wanted.find((w) => w.name === name)?.binary ?? request.binaryOutputs
      : request.binaryOutputs
        ? allBinary
        : noneBinary,
  );
}

function withBinary(header: Record<string, unknown>, chunks: Uint8Array[], isBinary: boolean): EncodedBody {
  const json = JSON.stringify(header);
  if (!isBinary) return { body: Buffer.from(json) };
  // One allocation for the header and the tensors (not a buffer for the header, then a copy of both).
  const headerLength = Buffer.byteLength(json);
  let size = headerLength;
  for (const chunk of chunks) size += chunk.byteLength;
  const body = Buffer.allocUnsafe(size);
  body.write(json, 0, "utf8");
  let offset = headerLength;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return { body, headerLength };
}

/** Decodes a response body (JSON or with binary outputs). */
export function decodeInferResponse(body: Buffer, headerLength?: number): InferResponse {
  const { header, rest } = parseHeader(body, headerLength);
  if (!Array.isArray(header.outputs)) throw new Error('inference response has no "outputs" array');
  let offset = 0;
  const outputs = (header.outputs as WireTensor[]).map((wire): NamedTensor => {
    const name = String(wire.name);
    if (!isV2Datatype(wire.datatype)) throw new Error(`output '${name}' has datatype ${String(wire.datatype)}`);
    const dtype = V2_TO_DTYPE[wire.datatype];
    const shape = parseShape(name, wire.shape);
    const count = shape.reduce((n, d) => n * d, 1);
    const size = binarySize(name, wire.parameters, "output");
    if (size !== undefined) {
      const data = fromBinaryData(name, dtype, rest.subarray(offset, offset + size), count);
      offset += size;
      return { name, dtype, shape, data };
    }
    return { name, dtype, shape, data: fromJsonData(name, dtype, wire.data) };
  });
  return {
    modelName: String(header.model_name ?? ""),
    modelVersion: typeof header.model_version === "string" ? header.model_version : undefined,
    id: typeof header.id === "string" ? header.id : undefined,
    outputs,
  };
}
