// .npz calibration sets for tests: what numpy.savez (stored) and numpy.savez_compressed (deflated)
// write, minus zip64. Arrays are little-endian, C order.
import { crc32, deflateRawSync } from "node:zlib";
import type { Tensor } from "@kiln/engine";

const DESCR: Record<string, string> = {
  float32: "<f4",
  float16: "<f2",
  float64: "<f8",
  int64: "<i8",
  int32: "<i4",
  int8: "|i1",
  uint8: "|u1",
  bool: "|b1",
};

/** One array as a .npy file (format 1.0). */
export function npyBytes(array: Tensor): Uint8Array {
  const descr = DESCR[array.dtype];
  if (!descr) throw new Error(`npyBytes: unsupported dtype ${array.dtype}`);
  const shape = array.shape.length === 1 ? `(${array.shape[0]},)` : `(${array.shape.join(", ")})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  const total = Math.ceil((10 + header.length + 1) / 64) * 64;
  header = `${header.padEnd(total - 11, " ")}\n`;
  const data = array.data as ArrayBufferView;
  const out = new Uint8Array(total + data.byteLength);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), total);
  return out;
}

/** A zip of `name.npy` entries, stored or deflated. Entries may be raw bytes (to build broken sets). */
export function npzBytes(
  arrays: Record<string, Tensor | Uint8Array>,
  options: { compress?: boolean } = {},
): Uint8Array {
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const [key, value] of Object.entries(arrays)) {
    const raw = value instanceof Uint8Array ? value : npyBytes(value);
    const body = options.compress ? new Uint8Array(deflateRawSync(raw)) : raw;
    const name = new TextEncoder().encode(`${key}.npy`);
    const method = options.compress ? 8 : 0;
    const local = new Uint8Array(30 + name.length);
    const lv = new DataView(local.buffer);
    lv.setUint32(0, 0x04034b50, true);
    lv.setUint16(4, 20, true);
    lv.setUint16(8, method, true);
    lv.setUint32(14, crc32(raw), true);
    lv.setUint32(18, body.length, true);
    lv.setUint32(22, raw.length, true);
    lv.setUint16(26, name.length, true);
    local.set(name, 30);
    const record = new Uint8Array(46 + name.length);
    const cv = new DataView(record.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint16(4, 20, true);
    cv.setUint16(6, 20, true);
    cv.setUint16(10, method, true);
    cv.setUint32(16, crc32(raw), true);
    cv.setUint32(20, body.length, true);
    cv.setUint32(24, raw.length, true);
    cv.setUint16(28, name.length, true);
    cv.setUint32(42, offset, true);
    record.set(name, 46);
    parts.push(local, body);
    central.push(record);
    offset += local.length + body.length;
  }
  const cdOffset = offset;
  const cdSize = central.reduce((n, r) => n + r.length, 0);
  const end = new Uint8Array(22);
  const ev = new DataView(end.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, central.length, true);
  ev.setUint16(10, central.length, true);
  ev.setUint32(12, cdSize, true);
  ev.setUint32(16, cdOffset, true);
  const out = new Uint8Array(cdOffset + cdSize + 22);
  let at = 0;
  for (const part of [...parts, ...central, end]) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** A calibration set for denseModel(): `samples` rows of x, float32 [samples, 4]. */
export function denseCalibration(samples = 16, options: { compress?: boolean } = {}): Uint8Array {
  const data = Float32Array.from({ length: samples * 4 }, (_, i) => Math.sin(i) * 2);
  return npzBytes({ x: { dtype: "float32", shape: [samples, 4], data } }, options);
}
