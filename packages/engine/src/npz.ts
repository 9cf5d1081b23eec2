// NumPy .npz reading: a zip archive of .npy files (np.savez / np.savez_compressed), one array per
// entry, the entry's name without ".npy" as the array's key. Used for INT8 calibration sets (one
// array per model input, samples stacked along the first dim).
//
// The archive comes from users, so it is read defensively: the central directory is the only
// source of truth, every offset and size is bounds-checked, entries may not overlap (the trick of
// overlapping-entry zip bombs), names may not repeat, the inflated total is capped before and
// while inflating, CRCs are checked. Any problem is a KilnEngineError("INVALID_ARGUMENT") that
// names the entry and what is wrong; nothing here throws anything else on bad input.
import { crc32, inflateRawSync } from "node:zlib";
import { decodeNpy, NpyError } from "./cli/npy.ts";
import { KilnEngineError } from "./errors.ts";
import type { DType, Tensor } from "./types.ts";

export interface ParseNpzOptions {
  /** Cap on the sum of the entries' uncompressed sizes (default 1 GiB). */
  maxInflatedBytes?: number;
  /** Cap on the number of entries (default 1024). */
  maxEntries?: number;
}

/** The element types a calibration set (or any .npz read here) may use. */
export const NPZ_DTYPES: readonly DType[] = ["float32", "float16", "int64", "int32", "uint8", "int8", "bool"];

const EOCD_SIGNATURE = 0x06054b50;
const ZIP64_EOCD_SIGNATURE = 0x06064b50;
const ZIP64_LOCATOR_SIGNATURE = 0x07064b50;
const CENTRAL_SIGNATURE = 0x02014b50;
const LOCAL_SIGNATURE = 0x04034b50;
const EOCD_SIZE = 22;
const MAX_COMMENT = 0xffff;

interface Entry {
  name: string;
  method: number;
  crc: number;
  compressedSize: number;
  size: number;
  headerOffset: number;
  dataStart: number;
  dataEnd: number;
}

const fail = (message: string): never => {
  throw new KilnEngineError("INVALID_ARGUMENT", message);
};

/**
 * Parses a NumPy .npz archive (stored or deflated entries) into tensors keyed by array name.
 * Supported element types: float32, float16 (raw bits in a Uint16Array), int64, int32, uint8, int8
 * and bool (a Uint8Array of 0/1); arrays must be C-ordered.
 */
export function parseNpz(bytes: Uint8Array, options: ParseNpzOptions = {}): Record<string, Tensor> {
  const maxInflated = options.maxInflatedBytes ?? 1 << 30;
  const maxEntries = options.maxEntries ?? 1024;
  const entries = readDirectory(bytes, maxEntries);
  if (entries.length === 0) fail("the .npz archive has no arrays");

  let declared = 0;
  for (const entry of entries) {
    declared += entry.size;
    if (declared > maxInflated) {
      fail(`the .npz archive is too large once uncompressed (more than ${maxInflated} bytes; entry '${entry.name}')`);
    }
  }

  const out: Record<string, Tensor> = Object.create(null);
  for (const entry of entries) {
    const raw = readEntry(bytes, entry);
    const key = entry.name.slice(0, -".npy".length);
    let array: ReturnType<typeof decodeNpy>;
    try {
      array = decodeNpy(raw, `entry '${entry.name}'`);
    } catch (error) {
      if (error instanceof NpyError) fail(error.message);
      throw error;
    }
    if (!NPZ_DTYPES.includes(array.dtype)) {
      fail(`entry '${entry.name}': dtype ${array.dtype} is not supported (use one of ${NPZ_DTYPES.join(", ")})`);
    }
    out[key] = { dtype: array.dtype, shape: array.shape, data: array.data } as Tensor;
  }
  return { ...out };
}

function readDirectory(bytes: Uint8Array, maxEntries: number): Entry[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = bytes.byteLength;
  if (length < EOCD_SIZE) fail(`not a .npz file: ${length} bytes is too short for a zip archive`);
  // The end-of-central-directory record is the last thing in the file, before a comment of at most 64 KiB.
  let eocd = -1;
  for (let p = length - EOCD_SIZE; p >= Math.max(0, length - EOCD_SIZE - MAX_COMMENT); p--) {
    if (view.getUint32(p, true) === EOCD_SIGNATURE && p + EOCD_SIZE + view.getUint16(p + 20, true) === length) {
      eocd = p;
      break;
    }
  }
  if (eocd < 0) fail("not a .npz file: no zip end-of-central-directory record (is it a zip archive saved by np.savez?)");
  if (view.getUint16(eocd + 4, true) !== 0 || view.getUint16(eocd + 6, true) !== 0) {
    fail("multi-disk zip archives are not supported");
  }
  let count = view.getUint16(eocd + 10, true);
  let cdSize = view.getUint32(eocd + 12, true);
  let cdOffset = view.getUint32(eocd + 16, true);
  let cdLimit = eocd;
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    // Zip64: the locator sits just before the classic record and points at the zip64 record.
    const locator = eocd - 20;
    if (locator < 0 || view.getUint32(locator, true) !== ZIP64_LOCATOR_SIGNATURE) {
      fail("zip64 archive without a zip64 end-of-central-directory locator");
    }
    const record = safeUint64(view, locator + 8, "zip64 end-of-central-directory offset");
    if (record < 0 || record + 56 > locator || view.getUint32(record, true) !== ZIP64_EOCD_SIGNATURE) {
      fail("zip64 end-of-central-directory record is missing or out of bounds");
    }
    count = safeUint64(view, record + 32, "entry count");
    cdSize = safeUint64(view, record + 40, "central directory size");
    cdOffset = safeUint64(view, record + 48, "central directory offset");
    cdLimit = record;
  }
  if (count > maxEntries) fail(`the .npz archive has ${count} entries (at most ${maxEntries} are allowed)`);
  if (cdOffset + cdSize > cdLimit) fail("the zip central directory lies outside the file (truncated or corrupt archive)");

  const entries: Entry[] = [];
  const names = new Set<string>();
  let p = cdOffset;
  const cdEnd = cdOffset + cdSize;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cdEnd || view.getUint32(p, true) !== CENTRAL_SIGNATURE) {
      fail(`zip central directory entry ${i + 1} of ${count} is corrupt`);
    }
    const flags = view.getUint16(p + 8, true);
    const method = view.getUint16(p + 10, true);
    const crc = view.getUint32(p + 16, true);
    let compressedSize = view.getUint32(p + 20, true);
    let size = view.getUint32(p + 24, true);
    const nameLength = view.getUint16(p + 28, true);
    const extraLength = view.getUint16(p + 30, true);
    const commentLength = view.getUint16(p + 32, true);
    let headerOffset = view.getUint32(p + 42, true);
    const next = p + 46 + nameLength + extraLength + commentLength;
    if (next > cdEnd) fail(`zip central directory entry ${i + 1} of ${count} runs past the directory`);
    const name = new TextDecoder(flags & 0x800 ? "utf-8" : "latin1").decode(bytes.subarray(p + 46, p + 46 + nameLength));
    const where = `entry '${name}'`;
    if (flags & 0x1) fail(`${where} is encrypted; save the arrays without a password`);
    if (method !== 0 && method !== 8) {
      fail(`${where} uses zip compression method ${method}; only stored and deflated entries are supported`);
    }
    // Zip64 extra field: the 64-bit values of exactly the fields that read 0xFFFFFFFF, in this order.
    if (size === 0xffffffff || compressedSize === 0xffffffff || headerOffset === 0xffffffff) {
      let e = p + 46 + nameLength;
      const extraEnd = e + extraLength;
      let found = false;
      while (e + 4 <= extraEnd) {
        const id = view.getUint16(e, true);
        const len = view.getUint16(e + 2, true);
        if (e + 4 + len > extraEnd) break;
        if (id === 0x0001) {
          let q = e + 4;
          const take = (what: string) => {
            if (q + 8 > e + 4 + len) fail(`${where}: zip64 extra field is too short for its ${what}`);
            const value = safeUint64(view, q, `${where} ${what}`);
            q += 8;
            return value;
          };
          if (size === 0xffffffff) size = take("size");
          if (compressedSize === 0xffffffff) compressedSize = take("compressed size");
          if (headerOffset === 0xffffffff) headerOffset = take("offset");
          found = true;
          break;
        }
        e += 4 + len;
      }
      if (!found) fail(`${where}: sizes need a zip64 extra field, which is missing`);
    }
    if (!name.endsWith(".npy") || name.length <= 4) {
      fail(`${where} is not a .npy array (an .npz holds only .npy entries; save with np.savez)`);
    }
    if (names.has(name)) fail(`${where} appears twice in the archive`);
    names.add(name);
    if (method === 0 && compressedSize !== size) fail(`${where} is stored but its sizes disagree`);

    // The local header repeats the name; its own extra field may differ in length (zip64 entries).
    if (headerOffset + 30 > cdOffset || view.getUint32(headerOffset, true) !== LOCAL_SIGNATURE) {
      fail(`${where}: its local header is missing or out of bounds (offset ${headerOffset})`);
    }
    const localName = view.getUint16(headerOffset + 26, true);
    const localExtra = view.getUint16(headerOffset + 28, true);
    const dataStart = headerOffset + 30 + localName + localExtra;
    const dataEnd = dataStart + compressedSize;
    if (dataEnd > cdOffset) fail(`${where}: its data runs past the end of the entries (truncated or corrupt archive)`);
    entries.push({ name, method, crc, compressedSize, size, headerOffset, dataStart, dataEnd });
    p = next;
  }
  // Entries may not share bytes: overlapping entries are how zip bombs multiply one deflate stream.
  const ordered = [...entries].sort((a, b) => a.headerOffset - b.headerOffset);
  for (let i = 1; i < ordered.length; i++) {
    const previous = ordered[i - 1] as Entry;
    const current = ordered[i] as Entry;
    if (current.headerOffset < previous.dataEnd) {
      fail(`entry '${current.name}' overlaps entry '${previous.name}' (a malformed or hostile archive)`);
    }
  }
  return entries;
}

function readEntry(bytes: Uint8Array, entry: Entry): Uint8Array {
  const where = `entry '${entry.name}'`;
  const compressed = bytes.subarray(entry.dataStart, entry.dataEnd);
  let raw: Uint8Array;
  if (entry.method === 0) {
    raw = compressed;
  } else {
    try {
      // One byte over the declared size is enough to tell that the entry lies about its size.
      raw = inflateRawSync(compressed, { maxOutputLength: Math.max(1, entry.size + 1) });
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === "ERR_BUFFER_TOO_LARGE") fail(`${where} inflates to more than its declared ${entry.size} bytes`);
      return fail(`${where}: its deflate data is corrupt (${(error as Error).message})`);
    }
  }
  if (raw.byteLength !== entry.size) {
    fail(`${where} holds ${raw.byteLength} bytes but the archive declares ${entry.size}`);
  }
  if (crc32(raw) >>> 0 !== entry.crc >>> 0) fail(`${where} fails its CRC-32 check (the archive is corrupt)`);
  return raw;
}

function safeUint64(view: DataView, offset: number, what: string): number {
  const value = view.getBigUint64(offset, true);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) fail(`zip64 ${what} is out of range`);
  return Number(value);
}
