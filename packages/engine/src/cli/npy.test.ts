import { describe, expect, it } from "vitest";
import { decodeNpy, encodeNpy, type NpyArray, NpyError } from "./npy.ts";

/** A file as numpy 2.x's np.save writes it: header padded to 128 bytes in total, then data. */
function numpyFile(header: string, dataHex: string, version = 1): Uint8Array {
  const prefix = version === 1 ? 10 : 12;
  const padded = `${header}${" ".repeat(128 - prefix - header.length - 1)}\n`;
  const data = Buffer.from(dataHex, "hex");
  const out = Buffer.alloc(prefix + padded.length + data.length);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]).copy(out);
  if (version === 1) out.writeUInt16LE(padded.length, 8);
  else out.writeUInt32LE(padded.length, 8);
  out.write(padded, prefix, "latin1");
  data.copy(out, prefix + padded.length);
  return new Uint8Array(out);
}

describe("decodeNpy", () => {
  it("reads what numpy writes: float32 matrix", () => {
    const a = decodeNpy(
      numpyFile(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
        "000000000000803f0000004000004040000080400000a040",
      ),
    );
    expect(a.dtype).toBe("float32");
    expect(a.shape).toEqual([2, 3]);
    expect(Array.from(a.data as Float32Array)).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it("reads float16 as raw bits", () => {
    const a = decodeNpy(numpyFile("{'descr': '<f2', 'fortran_order': False, 'shape': (2, 2), }", "003c00c10000ff7b"));
    expect(a.dtype).toBe("float16");
    expect(Array.from(a.data as Uint16Array)).toEqual([0x3c00, 0xc100, 0x0000, 0x7bff]); // 1, -2.5, 0, 65504
  });

  it("byte-swaps big-endian data", () => {
    const a = decodeNpy(
      numpyFile(
        "{'descr': '>i8', 'fortran_order': False, 'shape': (3,), }",
        "0000000000000001fffffffffffffffe0000000000000003",
      ),
    );
    expect(a.dtype).toBe("int64");
    expect(Array.from(a.data as BigInt64Array)).toEqual([1n, -2n, 3n]);
  });

  it("reads from a Node Buffer that is a view into a larger pool", () => {
    const file = numpyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", "0000803f00000040");
    const pool = Buffer.alloc(file.length + 3);
    pool.set(file, 3);
    const a = decodeNpy(pool.subarray(3));
    expect(Array.from(a.data as Float32Array)).toEqual([1, 2]);
  });

  it("reads bool, scalars and version 2 headers", () => {
    const b = decodeNpy(numpyFile("{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }", "010001"));
    expect(b.dtype).toBe("bool");
    expect(Array.from(b.data as Uint8Array)).toEqual([1, 0, 1]);
    const s = decodeNpy(numpyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", "00006040", 2));
    expect(s.shape).toEqual([]);
    expect((s.data as Float32Array)[0]).toBe(3.5);
  });

  it("rejects bad files with a reason", () => {
    const ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
    const cases: [Uint8Array, RegExp][] = [
      [new Uint8Array([1, 2, 3]), /not a .npy file/],
      [numpyFile(ok, "0000803f"), /truncated: shape \(2\) of float32 needs 8 bytes, file has 4/],
      [numpyFile(ok, "0000803f0000803f00"), /1 unexpected bytes/],
      [
        numpyFile("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", "0000000000000000"),
        /unsupported dtype '<c8'/,
      ],
      [numpyFile("{'descr': '<f4', 'fortran_order': True, 'shape': (1, 2), }", "0000000000000000"), /Fortran/],
      [numpyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (2, }", "00"), /malformed header/],
      [numpyFile("{'descr': '<f4', 'fortran_order': False}", ""), /'shape' must be a tuple/],
      [numpyFile("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", "00000000"), /malformed header/],
      [numpyFile("{'descr': '|b1', 'fortran_order': False, 'shape': (1,), }", "07"), /bool element 0 has value 7/],
      [numpyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999), }", ""), /too large/],
    ];
    for (const [bytes, message] of cases) {
      expect(() => decodeNpy(bytes, "x.npy")).toThrow(NpyError);
      expect(() => decodeNpy(bytes, "x.npy")).toThrow(message);
    }
    const huge = numpyFile(ok, "0000803f0000803f");
    new DataView(huge.buffer).setUint16(8, 60000, true);
    expect(() => decodeNpy(huge)).toThrow(/truncated header/);
    const version9 = numpyFile(ok, "");
    version9[6] = 9;
    expect(() => decodeNpy(version9)).toThrow(/version 9/);
  });
});

describe("encodeNpy", () => {
  it("round-trips every dtype with a 64-byte aligned header", () => {
    const arrays: NpyArray[] = [
      { dtype: "float32", shape: [2, 2], data: Float32Array.of(1, -2, 3.5, 0) },
      { dtype: "float16", shape: [2], data: Uint16Array.of(0x3c00, 0xc100) },
      { dtype: "float64", shape: [1], data: Float64Array.of(Math.PI) },
      { dtype: "int8", shape: [2], data: Int8Array.of(-1, 2) },
      { dtype: "uint8", shape: [2], data: Uint8Array.of(255, 0) },
      { dtype: "int16", shape: [1], data: Int16Array.of(-300) },
      { dtype: "uint16", shape: [1], data: Uint16Array.of(60000) },
      { dtype: "int32", shape: [1, 1, 1], data: Int32Array.of(-7) },
      { dtype: "uint32", shape: [1], data: Uint32Array.of(4e9) },
      { dtype: "int64", shape: [3], data: BigInt64Array.of(-1n, 0n, 1n << 40n) },
      { dtype: "uint64", shape: [1], data: BigUint64Array.of(1n << 63n) },
      { dtype: "bool", shape: [3], data: Uint8Array.of(1, 0, 1) },
      { dtype: "float32", shape: [], data: Float32Array.of(2) },
      { dtype: "float32", shape: [0, 4], data: new Float32Array(0) },
    ];
    for (const a of arrays) {
      const bytes = encodeNpy(a);
      const headerLength = new DataView(bytes.buffer).getUint16(8, true);
      expect((10 + headerLength) % 64).toBe(0);
      const back = decodeNpy(bytes);
      expect(back.dtype).toBe(a.dtype);
      expect(back.shape).toEqual(a.shape);
      expect(Array.from(back.data as ArrayLike<number | bigint>)).toEqual(
        Array.from(a.data as ArrayLike<number | bigint>),
      );
    }
  });

  it("writes the header numpy expects", () => {
    const text = Buffer.from(encodeNpy({ dtype: "int64", shape: [3], data: new BigInt64Array(3) })).toString("latin1");
    expect(text).toContain("{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }");
  });

  it("rejects data that does not match the dtype or shape", () => {
    expect(() => encodeNpy({ dtype: "float32", shape: [3], data: new Float32Array(2) }, "out")).toThrow(
      /out: shape \[3\] has 3 elements but the data has 2/,
    );
    expect(() => encodeNpy({ dtype: "int64", shape: [1], data: new Float32Array(1) })).toThrow(/BigInt64Array/);
    expect(() => encodeNpy({ dtype: "float32", shape: [-1], data: new Float32Array(1) })).toThrow(/invalid dimension/);
  });
});
