import { crc32, deflateRawSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { encodeNpy, type NpyArray } from "./cli/npy.ts";
import { KilnEngineError } from "./errors.ts";
import { parseNpz } from "./npz.ts";

// Written by numpy 2.4.6:
//   np.savez_compressed(f, images=np.arange(12, dtype=np.float32).reshape(2, 3, 2) / 4,
//     ids=np.array([[1, -2], [3, 2**40]], dtype=np.int64), mask=np.array([[True, False, True]]),
//     half=np.array([1.5, -2.0], dtype=np.float16), small=np.array([-3, 7], dtype=np.int8),
//     bytes_=np.array([255, 0], dtype=np.uint8), i32=np.array([[7], [-9]], dtype=np.int32))
// numpy writes every entry with force_zip64 (a zip64 extra field in the local headers).
const NUMPY_COMPRESSED =
  "UEsDBC0AAAAIAAAAIQCMuU6j//////////8KABQAaW1hZ2VzLm5weQEAEACwAAAAAAAAAGoAAAAAAAAAm+wX6hsQychQxlCtnpJanFykbqWgbpNmoq6joJ6WX1RSlJgXn1+UkgoSd0vMKU4FihdnJBakAvkaRjoKxjoKRpo6CrUK5AEuBjBosAMS9gwMDkDcAMQLgPgAED8AYgYHBgYBIFYAYgMHAFBLAwQtAAAACAAAACEA6NjJKv//////////BwAUAGlkcy5ucHkBABAAoAAAAAAAAABTAAAAAAAAAJvsF+obEMnIUMZQrZ6SWpxcpG6loG6TaaGuo6Cell9UUpSYF59flJIKEndLzClOBYoXZyQWpAL5GkY6CkaaOgq1CmQDLkYGCPj3HwKYGZAAUBIAUEsDBC0AAAAIAAAAIQA+Eeo1//////////8IABQAbWFzay5ucHkBABAAgwAAAAAAAABJAAAAAAAAAJvsF+obEMnIUMZQrZ6SWpxcpG6loF6TZKiuo6Cell9UUpSYF59flJIKEndLzClOBYoXZyQWpAL5GoY6CsaaOgq1CmQDLkYGRgBQSwMELQAAAAgAAAAhALPBggz//////////wgAFABoYWxmLm5weQEAEACEAAAAAAAAAEgAAAAAAAAAm+wX6hsQychQxlCtnpJanFykbqWgbpNmpK6joJ6WX1RSlJgXn1+UkgoSd0vMKU4FihdnJBakAvkaRjqaOgq1ChQALgY7hgMAUEsDBC0AAAAIAAAAIQDwf5tu//////////8JABQAc21hbGwubnB5AQAQAIIAAAAAAAAARgAAAAAAAACb7BfqGxDJyFDGUK2eklqcXKRupaBek2morqOgnpZfVFKUmBefX5SSChJ3S8wpTgWKF2ckFqQC+RpGOpo6CrUKFACuv+wAUEsDBC0AAAAIAAAAIQB9r1Q7//////////8KABQAYnl0ZXNfLm5weQEAEACCAAAAAAAAAEYAAAAAAAAAm+wX6hsQychQxlCtnpJanFykbqWgXlNqqK6joJ6WX1RSlJgXn1+UkgoSd0vMKU4FihdnJBakAvkaRjqaOgq1ChQArv8MAFBLAwQtAAAACAAAACEAOwDTof//////////BwAUAGkzMi5ucHkBABAAiAAAAAAAAABPAAAAAAAAAJvsF+obEMnIUMZQrZ6SWpxcpG6loG6TaaKuo6Cell9UUpSYF59flJIKEndLzClOBYoXZyQWpAL5GkY6CoaaOgq1CmQDLnYGBobv////BwBQSwECLQMtAAAACAAAACEAjLlOo2oAAACwAAAACgAAAAAAAAAAAAAAgAEAAAAAaW1hZ2VzLm5weVBLAQItAy0AAAAIAAAAIQDo2MkqUwAAAKAAAAAHAAAAAAAAAAAAAACAAaYAAABpZHMubnB5UEsBAi0DLQAAAAgAAAAhAD4R6jVJAAAAgwAAAAgAAAAAAAAAAAAAAIABMgEAAG1hc2subnB5UEsBAi0DLQAAAAgAAAAhALPBggxIAAAAhAAAAAgAAAAAAAAAAAAAAIABtQEAAGhhbGYubnB5UEsBAi0DLQAAAAgAAAAhAPB/m25GAAAAggAAAAkAAAAAAAAAAAAAAIABNwIAAHNtYWxsLm5weVBLAQItAy0AAAAIAAAAIQB9r1Q7RgAAAIIAAAAKAAAAAAAAAAAAAACAAbgCAABieXRlc18ubnB5UEsBAi0DLQAAAAgAAAAhADsA06FPAAAAiAAAAAcAAAAAAAAAAAAAAIABOgMAAGkzMi5ucHlQSwUGAAAAAAcABwB9AQAAwgMAAAAA";
// np.savez(f, x=np.array([[1.0, 2.0]], dtype=np.float64)): stored, and a dtype calibration does not take.
const NUMPY_STORED_FLOAT64 =
  "UEsDBC0AAAAAAAAAIQChG96A//////////8FABQAeC5ucHkBABAAkAAAAAAAAACQAAAAAAAAAJNOVU1QWQEAdgB7J2Rlc2NyJzogJzxmOCcsICdmb3J0cmFuX29yZGVyJzogRmFsc2UsICdzaGFwZSc6ICgxLCAyKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAKAAAAAAAA8D8AAAAAAAAAQFBLAQItAy0AAAAAAAAAIQChG96AkAAAAJAAAAAFAAAAAAAAAAAAAACAAQAAAAB4Lm5weVBLBQYAAAAAAQABADMAAADHAAAAAAA=";

const fromBase64 = (text: string) => new Uint8Array(Buffer.from(text, "base64"));

type ZipEntry = { name: string; data: Uint8Array; method?: 0 | 8; flags?: number };

/**
 * A minimal zip writer (what np.savez does, without zip64): local headers, data, central
 * directory, end record. Returns the archive and where each central directory record starts.
 */
function writeZip(entries: ZipEntry[]): { bytes: Uint8Array; central: number[]; eocd: number } {
  const parts: Uint8Array[] = [];
  const records: Uint8Array[] = [];
  let offset = 0;
  for (const entry of entries) {
    const method = entry.method ?? 0;
    const name = new TextEncoder().encode(entry.name);
    const body = method === 8 ? new Uint8Array(deflateRawSync(entry.data)) : entry.data;
    const crc = crc32(entry.data);
    const local = new Uint8Array(30 + name.length);
    const lv = new DataView(local.buffer);
    lv.setUint32(0, 0x04034b50, true);
    lv.setUint16(4, 20, true);
    lv.setUint16(6, entry.flags ?? 0, true);
    lv.setUint16(8, method, true);
    lv.setUint32(14, crc, true);
    lv.setUint32(18, body.length, true);
    lv.setUint32(22, entry.data.length, true);
    lv.setUint16(26, name.length, true);
    local.set(name, 30);
    const record = new Uint8Array(46 + name.length);
    const cv = new DataView(record.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint16(4, 20, true);
    cv.setUint16(6, 20, true);
    cv.setUint16(8, entry.flags ?? 0, true);
    cv.setUint16(10, method, true);
    cv.setUint32(16, crc, true);
    cv.setUint32(20, body.length, true);
    cv.setUint32(24, entry.data.length, true);
    cv.setUint16(28, name.length, true);
    cv.setUint32(42, offset, true);
    record.set(name, 46);
    parts.push(local, body);
    records.push(record);
    offset += local.length + body.length;
  }
  const cdOffset = offset;
  const central: number[] = [];
  for (const record of records) {
    central.push(offset);
    parts.push(record);
    offset += record.length;
  }
  const end = new Uint8Array(22);
  const ev = new DataView(end.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, records.length, true);
  ev.setUint16(10, records.length, true);
  ev.setUint32(12, offset - cdOffset, true);
  ev.setUint32(16, cdOffset, true);
  parts.push(end);
  const bytes = new Uint8Array(offset + 22);
  let at = 0;
  for (const part of parts) {
    bytes.set(part, at);
    at += part.length;
  }
  return { bytes, central, eocd: offset };
}

const npy = (array: NpyArray) => encodeNpy(array);
const x = () => npy({ dtype: "float32", shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) });
const ids = () => npy({ dtype: "int64", shape: [2, 1], data: new BigInt64Array([5n, -6n]) });

/** The message parseNpz rejects `bytes` with (and that it is a KilnEngineError, not a crash). */
function rejection(bytes: Uint8Array, options?: Parameters<typeof parseNpz>[1]): string {
  try {
    parseNpz(bytes, options);
  } catch (error) {
    expect(error).toBeInstanceOf(KilnEngineError);
    expect((error as KilnEngineError).code).toBe("INVALID_ARGUMENT");
    return (error as Error).message;
  }
  throw new Error("parseNpz accepted the archive");
}

const set32 = (bytes: Uint8Array, at: number, value: number) =>
  new DataView(bytes.buffer, bytes.byteOffset).setUint32(at, value, true);
const set16 = (bytes: Uint8Array, at: number, value: number) =>
  new DataView(bytes.buffer, bytes.byteOffset).setUint16(at, value, true);

describe("parseNpz", () => {
  it("reads every supported dtype from numpy's savez_compressed (zip64 local headers)", () => {
    const arrays = parseNpz(fromBase64(NUMPY_COMPRESSED));
    expect(Object.keys(arrays).sort()).toEqual(["bytes_", "half", "i32", "ids", "images", "mask", "small"]);
    expect(arrays.images).toEqual({
      dtype: "float32",
      shape: [2, 3, 2],
      data: new Float32Array(Array.from({ length: 12 }, (_, i) => i / 4)),
    });
    expect(arrays.ids).toEqual({ dtype: "int64", shape: [2, 2], data: new BigInt64Array([1n, -2n, 3n, 2n ** 40n]) });
    expect(arrays.mask).toEqual({ dtype: "bool", shape: [1, 3], data: new Uint8Array([1, 0, 1]) });
    // float16 travels as raw bits: 1.5 = 0x3e00, -2.0 = 0xc000.
    expect(arrays.half).toEqual({ dtype: "float16", shape: [2], data: new Uint16Array([0x3e00, 0xc000]) });
    expect(arrays.small).toEqual({ dtype: "int8", shape: [2], data: new Int8Array([-3, 7]) });
    expect(arrays.bytes_).toEqual({ dtype: "uint8", shape: [2], data: new Uint8Array([255, 0]) });
    expect(arrays.i32).toEqual({ dtype: "int32", shape: [2, 1], data: new Int32Array([7, -9]) });
  });

  it("names the entry whose dtype is not supported (numpy's stored savez)", () => {
    expect(rejection(fromBase64(NUMPY_STORED_FLOAT64))).toBe(
      "entry 'x.npy': dtype float64 is not supported (use one of float32, float16, int64, int32, uint8, int8, bool)",
    );
  });

  it("reads stored and deflated entries from its own writer, in a Buffer view with an offset", () => {
    const { bytes } = writeZip([
      { name: "x.npy", data: x(), method: 0 },
      { name: "ids.npy", data: ids(), method: 8 },
    ]);
    const pooled = Buffer.alloc(bytes.length + 7);
    pooled.set(bytes, 7);
    const arrays = parseNpz(pooled.subarray(7));
    expect(arrays.x).toEqual({ dtype: "float32", shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) });
    expect(arrays.ids).toEqual({ dtype: "int64", shape: [2, 1], data: new BigInt64Array([5n, -6n]) });
  });

  it("rejects files that are not zip archives, and empty or truncated ones", () => {
    expect(rejection(new Uint8Array(0))).toBe("not a .npz file: 0 bytes is too short for a zip archive");
    expect(rejection(x())).toMatch(/^not a \.npz file: no zip end-of-central-directory record/);
    expect(rejection(writeZip([]).bytes)).toBe("the .npz archive has no arrays");
    const { bytes } = writeZip([{ name: "x.npy", data: x() }]);
    // Cut in the middle: the end record is gone.
    expect(rejection(bytes.subarray(0, bytes.length - 30))).toMatch(/no zip end-of-central-directory record/);
  });

  it("rejects offsets and sizes that point outside the archive", () => {
    const base = () => writeZip([{ name: "x.npy", data: x() }]);
    {
      const { bytes, eocd } = base();
      set32(bytes, eocd + 16, 0x7fff_0000);
      expect(rejection(bytes)).toBe(
        "the zip central directory lies outside the file (truncated or corrupt archive)",
      );
    }
    {
      const { bytes, central } = base();
      set32(bytes, (central[0] as number) + 42, 12_345);
      expect(rejection(bytes)).toBe("entry 'x.npy': its local header is missing or out of bounds (offset 12345)");
    }
    {
      const { bytes, central } = base();
      set32(bytes, (central[0] as number) + 20, 1 << 30);
      set32(bytes, (central[0] as number) + 24, 1 << 30);
      expect(rejection(bytes, { maxInflatedBytes: 1 << 31 })).toBe(
        "entry 'x.npy': its data runs past the end of the entries (truncated or corrupt archive)",
      );
    }
    {
      const { bytes, eocd } = base();
      set16(bytes, eocd + 10, 3); // claims three entries, holds one
      expect(rejection(bytes)).toBe("zip central directory entry 2 of 3 is corrupt");
    }
  });

  it("rejects duplicate names and entries that share bytes", () => {
    expect(
      rejection(
        writeZip([
          { name: "x.npy", data: x() },
          { name: "x.npy", data: x() },
        ]).bytes,
      ),
    ).toBe("entry 'x.npy' appears twice in the archive");
    // Two names pointing at one local header: the overlapping-entries zip bomb.
    const { bytes, central } = writeZip([
      { name: "a.npy", data: x() },
      { name: "b.npy", data: x() },
    ]);
    set32(bytes, (central[1] as number) + 42, 0);
    expect(rejection(bytes)).toBe("entry 'b.npy' overlaps entry 'a.npy' (a malformed or hostile archive)");
  });

  it("caps the inflated size: declared totals, and entries that inflate past what they declare", () => {
    // 64 MiB of zeros deflate to about 64 KiB.
    const zeros = npy({ dtype: "uint8", shape: [64 << 20], data: new Uint8Array(64 << 20) });
    const bomb = writeZip([{ name: "zeros.npy", data: zeros, method: 8 }]);
    expect(bomb.bytes.length).toBeLessThan(200_000);
    expect(rejection(bomb.bytes, { maxInflatedBytes: 1 << 20 })).toBe(
      "the .npz archive is too large once uncompressed (more than 1048576 bytes; entry 'zeros.npy')",
    );
    // The same stream declaring a small size: inflation stops one byte past it.
    set32(bomb.bytes, (bomb.central[0] as number) + 24, 1000);
    expect(rejection(bomb.bytes, { maxInflatedBytes: 1 << 20 })).toBe(
      "entry 'zeros.npy' inflates to more than its declared 1000 bytes",
    );
    const many = writeZip(Array.from({ length: 5 }, (_, i) => ({ name: `a${i}.npy`, data: x() })));
    expect(rejection(many.bytes, { maxEntries: 4 })).toBe("the .npz archive has 5 entries (at most 4 are allowed)");
  });

  it("rejects corrupt data, encryption, other compression methods and non-.npy entries", () => {
    {
      const { bytes } = writeZip([{ name: "x.npy", data: x() }]);
      bytes[30 + "x.npy".length + 70] ^= 0xff; // a byte of the array data
      expect(rejection(bytes)).toBe("entry 'x.npy' fails its CRC-32 check (the archive is corrupt)");
    }
    {
      const { bytes } = writeZip([{ name: "x.npy", data: x(), method: 8 }]);
      bytes.fill(0xff, 30 + "x.npy".length, 30 + "x.npy".length + 4);
      expect(rejection(bytes)).toMatch(/^entry 'x\.npy': its deflate data is corrupt \(/);
    }
    expect(rejection(writeZip([{ name: "x.npy", data: x(), flags: 1 }]).bytes)).toBe(
      "entry 'x.npy' is encrypted; save the arrays without a password",
    );
    {
      const { bytes, central } = writeZip([{ name: "x.npy", data: x() }]);
      set16(bytes, (central[0] as number) + 10, 12);
      expect(rejection(bytes)).toBe(
        "entry 'x.npy' uses zip compression method 12; only stored and deflated entries are supported",
      );
    }
    expect(rejection(writeZip([{ name: "notes.txt", data: new TextEncoder().encode("hi") }]).bytes)).toBe(
      "entry 'notes.txt' is not a .npy array (an .npz holds only .npy entries; save with np.savez)",
    );
  });

  it("names the entry when its .npy is malformed", () => {
    const truncated = x().subarray(0, x().length - 4);
    expect(rejection(writeZip([{ name: "x.npy", data: truncated }]).bytes)).toBe(
      "entry 'x.npy': data is truncated: shape (2, 3) of float32 needs 24 bytes, file has 20",
    );
    const fortran = new Uint8Array(
      Buffer.from(Buffer.from(x()).toString("latin1").replace("'fortran_order': False", "'fortran_order': True "), "latin1"),
    );
    expect(rejection(writeZip([{ name: "x.npy", data: fortran }]).bytes)).toBe(
      "entry 'x.npy': Fortran-ordered arrays are not supported; save with np.ascontiguousarray first",
    );
    expect(rejection(writeZip([{ name: "x.npy", data: new Uint8Array([1, 2, 3]) }]).bytes)).toBe(
      "entry 'x.npy': not a .npy file (missing the \\x93NUMPY magic)",
    );
  });

  it("never crashes on damaged archives: every mutation parses or is rejected with a KilnEngineError", () => {
    const sources = [
      fromBase64(NUMPY_COMPRESSED),
      writeZip([
        { name: "x.npy", data: x(), method: 8 },
        { name: "ids.npy", data: ids() },
      ]).bytes,
    ];
    // A fixed-seed generator, so a failure reproduces.
    let seed = 0x2545f491;
    const random = () => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) / 2 ** 32;
    };
    let rejected = 0;
    for (let round = 0; round < 3000; round++) {
      const source = sources[round % sources.length] as Uint8Array;
      const bytes = source.slice();
      const edits = 1 + Math.floor(random() * 4);
      for (let e = 0; e < edits; e++) {
        const at = Math.floor(random() * bytes.length);
        bytes[at] = random() < 0.5 ? 0xff : Math.floor(random() * 256);
      }
      const cut = random() < 0.1 ? Math.floor(random() * bytes.length) : bytes.length;
      try {
        parseNpz(bytes.subarray(0, cut), { maxInflatedBytes: 1 << 20 });
      } catch (error) {
        if (!(error instanceof KilnEngineError)) throw error;
        rejected++;
      }
    }
    expect(rejected).toBeGreaterThan(1000);
  });
});
