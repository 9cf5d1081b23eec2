import { describe, expect, it } from "vitest";
import { ProtoWriter } from "./wire.ts";

const hex = (w: ProtoWriter): string => Buffer.from(w.toBytes()).toString("hex");

describe("ProtoWriter", () => {
  it("encodes varints as the protobuf spec's examples do", () => {
    expect(hex(new ProtoWriter().int64(1, 150))).toBe("089601");
    expect(hex(new ProtoWriter().int64(1, 0))).toBe("0800");
    expect(hex(new ProtoWriter().int64(2, 300))).toBe("10ac02");
  });

  it("encodes negative int64 as 10-byte two's complement", () => {
    expect(hex(new ProtoWriter().int64(3, -1))).toBe("18ffffffffffffffffff01");
    expect(hex(new ProtoWriter().int64(3, (1n << 63n) - 1n))).toBe("18ffffffffffffffff7f");
  });

  it("encodes floats little-endian in fixed32", () => {
    expect(hex(new ProtoWriter().float(2, 1))).toBe("150000803f");
  });

  it("nests messages with their length and keeps large blobs by reference", () => {
    const blob = new Uint8Array(10_000).fill(7);
    const inner = new ProtoWriter().string(1, "ab").bytes(9, blob);
    const outer = new ProtoWriter().message(5, inner);
    const chunks = outer.finish();
    expect(chunks).toContain(blob);
    const bytes = new ProtoWriter().message(5, new ProtoWriter().string(1, "ab")).toBytes();
    expect(Buffer.from(bytes).toString("hex")).toBe("2a040a026162");
    // outer: tag + 2-byte length + inner; inner: "ab" field (4 bytes) + tag + 2-byte length + blob.
    expect(outer.length).toBe(1 + 2 + (4 + 1 + 2 + 10_000));
  });

  it("packs repeated varints into one record", () => {
    expect(hex(new ProtoWriter().packedInt64(4, [3, 270, 86942]))).toBe("2206038e029ea705");
  });

  it("rejects values it cannot encode", () => {
    expect(() => new ProtoWriter().int64(1, 1.5)).toThrow(/integer/);
    expect(() => new ProtoWriter().int64(0, 1)).toThrow(/field number/);
    expect(() => new ProtoWriter().int64(1, 1n << 64n)).toThrow(/64-bit/);
  });
});
