import { describe, expect, it } from "vitest";
import { ServingError } from "../errors.ts";
import {
  decodeInferRequest,
  decodeInferResponse,
  encodeClientResponse,
  encodeInferRequest,
  encodeInferResponse,
} from "./infer-codec.ts";
import { validateInputs } from "./validate-inputs.ts";

const json = (value: unknown) => Buffer.from(JSON.stringify(value));

function errorOf(run: () => unknown): ServingError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ServingError);
    return error as ServingError;
  }
  throw new Error("expected a ServingError");
}

describe("KServe v2 request decoding", () => {
  it("reads JSON tensors, flat or nested", () => {
    const request = decodeInferRequest(
      json({
        id: "r1",
        inputs: [
          {
            name: "x",
            shape: [2, 2],
            datatype: "FP32",
            data: [
              [1, 2],
              [3, 4],
            ],
          },
          { name: "ids", shape: [2], datatype: "INT64", data: [7, "9007199254740993"] },
          { name: "mask", shape: [2], datatype: "BOOL", data: [true, false] },
          { name: "text", shape: [1], datatype: "BYTES", data: ["héllo"] },
          { name: "h", shape: [1], datatype: "FP16", data: [1.5] },
        ],
        outputs: [{ name: "y", parameters: { binary_data: true } }],
      }),
    );
    expect(request.id).toBe("r1");
    expect(request.inputs.map((t) => [t.name, t.dtype, t.shape])).toEqual([
      ["x", "float32", [2, 2]],
      ["ids", "int64", [2]],
      ["mask", "bool", [2]],
      ["text", "string", [1]],
      ["h", "float16", [1]],
    ]);
    expect(Array.from(request.inputs[0]?.data as Float32Array)).toEqual([1, 2, 3, 4]);
    expect(Array.from(request.inputs[1]?.data as BigInt64Array)).toEqual([7n, 9007199254740993n]);
    expect(Array.from(request.inputs[2]?.data as Uint8Array)).toEqual([1, 0]);
    expect(request.inputs[3]?.data).toEqual(["héllo"]);
    expect(Array.from(request.inputs[4]?.data as Uint16Array)).toEqual([0x3e00]);
    expect(request.outputs).toEqual([{ name: "y", binary: true }]);
  });

  it("round-trips the binary tensor extension, BYTES included", () => {
    const encoded = encodeInferRequest({
      inputs: [
        { name: "x", dtype: "float32", shape: [1, 3], data: Float32Array.from([1.5, -2, 3]) },
        { name: "s", dtype: "string", shape: [2], data: ["a", "bcd"] },
      ],
      binaryOutputs: true,
    });
    expect(encoded.headerLength).toBeGreaterThan(0);
    const header = JSON.parse(encoded.body.subarray(0, encoded.headerLength).toString());
    expect(header.inputs[0].parameters).toEqual({ binary_data_size: 12 });
    expect(header.inputs[1].parameters).toEqual({ binary_data_size: 4 + 1 + 4 + 3 });
    // An odd header length leaves the float data unaligned in the body: decoding must still work.
    const decoded = decodeInferRequest(encoded.body, encoded.headerLength);
    expect(Array.from(decoded.inputs[0]?.data as Float32Array)).toEqual([1.5, -2, 3]);
    expect(decoded.inputs[1]?.data).toEqual(["a", "bcd"]);
    expect(decoded.binaryOutputs).toBe(true);
  });

  it("names the tensor and the problem in every error", () => {
    const input = (over: object) =>
      json({ inputs: [{ name: "x", shape: [2], datatype: "FP32", data: [1, 2], ...over }] });
    expect(errorOf(() => decodeInferRequest(input({ datatype: "FLOAT" }))).message).toBe(
      `input 'x': datatype "FLOAT" is not a KServe v2 datatype`,
    );
    expect(errorOf(() => decodeInferRequest(input({ data: [1, 2, 3] }))).message).toBe(
      "input 'x': shape [2] needs 2 elements but data has 3",
    );
    expect(errorOf(() => decodeInferRequest(input({ data: [1, "a"] }))).message).toBe(
      `input 'x': element 1 ("a") is not a number`,
    );
    expect(errorOf(() => decodeInferRequest(input({ datatype: "UINT8", data: [1, 300] }))).message).toBe(
      "input 'x': element 1 (300) is not an integer within uint8 range",
    );
    expect(errorOf(() => decodeInferRequest(input({ shape: [-1] }))).message).toMatch(/input 'x': dim 0/);
    expect(errorOf(() => decodeInferRequest(Buffer.from("{nope"))).status).toBe(400);
    const short = encodeInferRequest({
      inputs: [{ name: "x", dtype: "float32", shape: [2], data: new Float32Array(2) }],
    });
    expect(
      errorOf(() => decodeInferRequest(short.body.subarray(0, short.body.length - 1), short.headerLength)).message,
    ).toBe("input 'x': binary_data_size 8 runs past the end of the body");
    expect(
      errorOf(() =>
        decodeInferRequest(
          json({ inputs: [{ name: "x", shape: [3], datatype: "FP32", parameters: { binary_data_size: 8 } }] }),
          undefined,
        ),
      ).message,
    ).toBe("input 'x': binary_data_size 8 runs past the end of the body");
  });
});

describe("signature validation", () => {
  const signature = {
    inputs: [{ name: "x", dtype: "float32" as const, shape: ["batch", 4] }],
    outputs: [{ name: "y", dtype: "float32" as const, shape: ["batch", 3] }],
    profiles: [{ x: { min: [1, 4], opt: [4, 4], max: [8, 4] } }],
  };
  const x = (shape: [number, number], dtype: "float32" | "int32" = "float32") => ({
    name: "x",
    dtype,
    shape,
    data: dtype === "float32" ? new Float32Array(shape[0] * shape[1]) : new Int32Array(shape[0] * shape[1]),
  });

  it("accepts shapes within a profile", () => {
    expect(() => validateInputs([x([8, 4])], signature)).not.toThrow();
  });
  it("rejects wrong dtypes, static dims, profile ranges, unknown and missing inputs", () => {
    expect(errorOf(() => validateInputs([x([2, 4], "int32")], signature)).message).toBe(
      "input 'x': datatype INT32 does not match the model's FP32",
    );
    expect(errorOf(() => validateInputs([x([2, 5])], signature)).message).toBe(
      "input 'x': dim 1 is 5 but the model expects 4 (shape [batch,4])",
    );
    expect(errorOf(() => validateInputs([x([9, 4])], signature)).message).toBe(
      "input 'x': dim 0 is 9, outside the engine's profile range 1..8",
    );
    expect(errorOf(() => validateInputs([{ ...x([1, 4]), name: "z" }], signature)).message).toBe(
      "input 'z' is not an input of this model (inputs: x)",
    );
    expect(errorOf(() => validateInputs([], signature)).message).toBe("input 'x' is missing");
  });
});

describe("KServe v2 responses", () => {
  it("mixes JSON and binary outputs as asked", () => {
    const outputs = [
      { name: "y", dtype: "float32" as const, shape: [2], data: Float32Array.from([0.5, 1]) },
      { name: "k", dtype: "int64" as const, shape: [1], data: BigInt64Array.from([3n]) },
    ];
    const encoded = encodeInferResponse({ modelName: "m", id: "r", outputs }, (name) => name === "y");
    const decoded = decodeInferResponse(encoded.body, encoded.headerLength);
    expect(decoded.modelName).toBe("m");
    expect(Array.from(decoded.outputs[0]?.data as Float32Array)).toEqual([0.5, 1]);
    expect(Array.from(decoded.outputs[1]?.data as BigInt64Array)).toEqual([3n]);
    const plain = encodeInferResponse({ modelName: "m", outputs }, () => false);
    expect(plain.headerLength).toBeUndefined();
    expect(JSON.parse(plain.body.toString()).outputs[1]).toEqual({
      name: "k",
      datatype: "INT64",
      shape: [1],
      data: [3],
    });
  });

  it("encodes the client's answer from its request: outputs asked for, each in the form asked, id, model", () => {
    const outputs = [
      { name: "y", dtype: "float32" as const, shape: [2], data: Float32Array.from([0.5, 1]) },
      { name: "k", dtype: "int64" as const, shape: [1], data: BigInt64Array.from([3n]) },
    ];
    const model = { name: "dense", version: "2" };
    const decode = (body: string, headerLength?: number) => decodeInferRequest(Buffer.from(body), headerLength);

    const plain = encodeClientResponse(
      decode('{"id":"r1","inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}'),
      model,
      outputs,
    );
    expect(plain.headerLength).toBeUndefined();
    expect(JSON.parse(plain.body.toString())).toEqual({
      model_name: "dense",
      model_version: "2",
      id: "r1",
      outputs: [
        { name: "y", datatype: "FP32", shape: [2], data: [0.5, 1] },
        { name: "k", datatype: "INT64", shape: [1], data: [3] },
      ],
    });

    // Only "k", in binary (its own parameter), whatever the request's default.
    const onlyK = encodeClientResponse(
      decode(
        '{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"outputs":[{"name":"k","parameters":{"binary_data":true}}]}',
      ),
      model,
      outputs,
    );
    const decodedK = decodeInferResponse(onlyK.body, onlyK.headerLength);
    expect(decodedK.outputs.map((o) => o.name)).toEqual(["k"]);
    expect(Array.from(decodedK.outputs[0]?.data as BigInt64Array)).toEqual([3n]);
    expect(onlyK.headerLength).toBeLessThan(onlyK.body.byteLength);

    // binary_data_output: every output binary.
    const allBinary = encodeClientResponse(
      decode(
        '{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"parameters":{"binary_data_output":true}}',
      ),
      model,
      outputs,
    );
    expect(allBinary.body.byteLength - (allBinary.headerLength ?? 0)).toBe(2 * 4 + 8);
    expect(decodeInferResponse(allBinary.body, allBinary.headerLength).modelVersion).toBe("2");
  });
});
