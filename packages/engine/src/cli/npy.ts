// NumPy .npy reading and writing (format versions 1.0, 2.0 and 3.0), for `kiln run` inputs and
// outputs. Arrays are typed arrays in C order; float16 data is carried as its raw bits in a
// Uint16Array and bool as a Uint8Array of 0/1, the way the engine's tensors carry them.
// Every malformed file is rejected with a message saying what is wrong, never a crash or a
// silently misread array.

export type NpyDType =
  | "float16"
  | "float32"
  | "float64"
  | "int8"
  | "uint8"
  | "int16"
  | "uint16"
  | "int32"
  | "uint32"
  | "int64"
  | "uint64"
  | "bool";

export type NpyData =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

export interface NpyArray {
  dtype: NpyDType;
  shape: number[];
  data: NpyData;
}

export class NpyError extends Error {
  override readonly name = "NpyError";
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"
// Readers refuse headers past this size: numpy itself caps them (10 KB by default) and a huge one
// means a corrupt or hostile file.
const MAX_HEADER_BYTES = 1 << 20;

interface DTypeInfo {
  dtype: NpyDType;
  size: number;
  make(buffer: ArrayBuffer, offset: number, count: number): NpyData;
}

// numpy's descr type characters (kind + item size) for each dtype.
const BY_DESCR: Readonly<Record<string, DTypeInfo>> = {
  f2: { dtype: "float16", size: 2, make: (b, o, n) => new Uint16Array(b, o, n) },
  f4: { dtype: "float32", size: 4, make: (b, o, n) => new Float32Array(b, o, n) },
  f8: { dtype: "float64", size: 8, make: (b, o, n) => new Float64Array(b, o, n) },
  i1: { dtype: "int8", size: 1, make: (b, o, n) => new Int8Array(b, o, n) },
  u1: { dtype: "uint8", size: 1, make: (b, o, n) => new Uint8Array(b, o, n) },
  i2: { dtype: "int16", size: 2, make: (b, o, n) => new Int16Array(b, o, n) },
  u2: { dtype: "uint16", size: 2, make: (b, o, n) => new Uint16Array(b, o, n) },
  i4: { dtype: "int32", size: 4, make: (b, o, n) => new Int32Array(b, o, n) },
  u4: { dtype: "uint32", size: 4, make: (b, o, n) => new Uint32Array(b, o, n) },
  i8: { dtype: "int64", size: 8, make: (b, o, n) => new BigInt64Array(b, o, n) },
  u8: { dtype: "uint64", size: 8, make: (b, o, n) => new BigUint64Array(b, o, n) },
  b1: { dtype: "bool", size: 1, make: (b, o, n) => new Uint8Array(b, o, n) },
};

const DESCR_OF: Readonly<Record<NpyDType, string>> = {
  float16: "<f2",
  float32: "<f4",
  float64: "<f8",
  int8: "|i1",
  uint8: "|u1",
  int16: "<i2",
  uint16: "<u2",
  int32: "<i4",
  uint32: "<u4",
  int64: "<i8",
  uint64: "<u8",
  bool: "|b1",
};

const EXPECTED_ARRAY: Readonly<Record<NpyDType, string>> = {
  float16: "Uint16Array",
  float32: "Float32Array",
  float64: "Float64Array",
  int8: "Int8Array",
  uint8: "Uint8Array",
  int16: "Int16Array",
  uint16: "Uint16Array",
  int32: "Int32Array",
  uint32: "Uint32Array",
  int64: "BigInt64Array",
  uint64: "BigUint64Array",
  bool: "Uint8Array",
};

export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

// ---- reading -------------------------------------------------------------------------------

export function decodeNpy(bytes: Uint8Array, what = "npy file"): NpyArray {
  if (bytes.byteLength < 10 || MAGIC.some((m, i) => bytes[i] !== m)) {
    throw new NpyError(`${what}: not a .npy file (missing the \\x93NUMPY magic)`);
  }
  const major = bytes[6] as number;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLength: number;
  let headerStart: number;
  if (major === 1) {
    headerLength = view.getUint16(8, true);
    headerStart = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.byteLength < 12) throw new NpyError(`${what}: truncated header`);
    headerLength = view.getUint32(8, true);
    headerStart = 12;
  } else {
    throw new NpyError(`${what}: unsupported .npy format version ${major}.${bytes[7]}`);
  }
  if (headerLength > MAX_HEADER_BYTES) throw new NpyError(`${what}: header of ${headerLength} bytes is too large`);
  const dataStart = headerStart + headerLength;
  if (dataStart > bytes.byteLength)
    throw new NpyError(`${what}: truncated header (needs ${dataStart} bytes, file has ${bytes.byteLength})`);
  // Version 3 allows UTF-8 in the header (field names); 1 and 2 are latin1. Our keys are ASCII either way.
  const headerText = new TextDecoder(major === 3 ? "utf-8" : "latin1").decode(bytes.subarray(headerStart, dataStart));
  const header = parseHeader(headerText, what);

  const descr = header.descr;
  const order = descr[0];
  const info = BY_DESCR[descr.slice(1)];
  if (info === undefined || (order !== "<" && order !== ">" && order !== "|" && order !== "=")) {
    throw new NpyError(
      `${what}: unsupported dtype '${descr}' (supported: ${Object.keys(BY_DESCR).join(", ")} in little or big endian)`,
    );
  }
  if (header.fortranOrder && header.shape.length > 1) {
    throw new NpyError(`${what}: Fortran-ordered arrays are not supported; save with np.ascontiguousarray first`);
  }
  const count = elementCount(header.shape);
  const byteLength = count * info.size;
  if (!Number.isSafeInteger(byteLength)) throw new NpyError(`${what}: shape (${header.shape.join(", ")}) is too large`);
  const available = bytes.byteLength - dataStart;
  if (available < byteLength) {
    throw new NpyError(
      `${what}: data is truncated: shape (${header.shape.join(", ")}) of ${info.dtype} needs ${byteLength} bytes, file has ${available}`,
    );
  }
  if (available > byteLength) {
    throw new NpyError(`${what}: ${available - byteLength} unexpected bytes after the array data`);
  }
  // Copy into a fresh, aligned buffer: the source offset may not be a multiple of the item size.
  // (Not bytes.slice: on a Node Buffer that is a view into a shared pool, not a copy.)
  const copy = new Uint8Array(byteLength);
  copy.set(bytes.subarray(dataStart, dataStart + byteLength));
  if (order === ">" && info.size > 1) swapBytes(copy, info.size);
  const data = info.make(copy.buffer, 0, count);
  if (info.dtype === "bool") {
    const flags = data as Uint8Array;
    for (let i = 0; i < flags.length; i++) {
      if ((flags[i] as number) > 1)
        throw new NpyError(`${what}: bool element ${i} has value ${flags[i]} (expected 0 or 1)`);
    }
  }
  return { dtype: info.dtype, shape: header.shape, data };
}

function swapBytes(bytes: Uint8Array, size: number): void {
  for (let i = 0; i < bytes.length; i += size) bytes.subarray(i, i + size).reverse();
}

interface Header {
  descr: string;
  fortranOrder: boolean;
  shape: number[];
}

/** Parses the header, a Python dict literal such as {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }. */
function parseHeader(text: string, what: string): Header {
  let pos = 0;
  const fail = (message: string): never => {
    throw new NpyError(`${what}: malformed header (${message}) in ${JSON.stringify(text.trim().slice(0, 200))}`);
  };
  const skipSpace = () => {
    while (pos < text.length && /\s/.test(text[pos] as string)) pos++;
  };
  const expect = (ch: string) => {
    skipSpace();
    if (text[pos] !== ch) fail(`expected '${ch}' at offset ${pos}`);
    pos++;
  };
  const parseString = (): string => {
    skipSpace();
    const quote = text[pos];
    if (quote !== "'" && quote !== '"') return fail(`expected a string at offset ${pos}`);
    const end = text.indexOf(quote, pos + 1);
    if (end < 0) return fail("unterminated string");
    const s = text.slice(pos + 1, end);
    pos = end + 1;
    return s;
  };
  const parseValue = (): string | boolean | number[] => {
    skipSpace();
    const ch = text[pos];
    if (ch === "'" || ch === '"') return parseString();
    if (text.startsWith("True", pos)) {
      pos += 4;
      return true;
    }
    if (text.startsWith("False", pos)) {
      pos += 5;
      return false;
    }
    if (ch === "(") {
      pos++;
      const dims: number[] = [];
      for (;;) {
        skipSpace();
        if (text[pos] === ")") {
          pos++;
          return dims;
        }
        const m = /^\d+L?/.exec(text.slice(pos));
        if (m === null) return fail(`expected a dimension at offset ${pos}`);
        const d = Number(m[0].replace("L", ""));
        if (!Number.isSafeInteger(d)) return fail(`dimension ${m[0]} is too large`);
        dims.push(d);
        pos += m[0].length;
        skipSpace();
        if (text[pos] === ",") pos++;
        else if (text[pos] !== ")") fail(`expected ',' or ')' at offset ${pos}`);
      }
    }
    return fail(`unexpected value at offset ${pos}`);
  };

  expect("{");
  const fields = new Map<string, string | boolean | number[]>();
  for (;;) {
    skipSpace();
    if (text[pos] === "}") {
      pos++;
      break;
    }
    const key = parseString();
    expect(":");
    if (fields.has(key)) fail(`duplicate key '${key}'`);
    fields.set(key, parseValue());
    skipSpace();
    if (text[pos] === ",") pos++;
    else if (text[pos] !== "}") fail(`expected ',' or '}' at offset ${pos}`);
  }
  if (text.slice(pos).trim() !== "") fail("text after the closing '}'");
  const descr = fields.get("descr");
  const fortranOrder = fields.get("fortran_order");
  const shape = fields.get("shape");
  if (typeof descr !== "string") return fail("'descr' must be a dtype string (structured dtypes are not supported)");
  if (typeof fortranOrder !== "boolean") return fail("'fortran_order' must be True or False");
  if (!Array.isArray(shape)) return fail("'shape' must be a tuple");
  for (const key of fields.keys()) {
    if (key !== "descr" && key !== "fortran_order" && key !== "shape") fail(`unknown key '${key}'`);
  }
  return { descr, fortranOrder, shape };
}

// ---- writing -------------------------------------------------------------------------------

export function encodeNpy(array: NpyArray, what = "array"): Uint8Array {
  const expectedType = EXPECTED_ARRAY[array.dtype];
  if (expectedType === undefined) throw new NpyError(`${what}: unsupported dtype '${array.dtype}'`);
  if (array.data.constructor.name !== expectedType) {
    throw new NpyError(`${what}: ${array.dtype} data must be a ${expectedType}, got ${array.data.constructor.name}`);
  }
  for (const d of array.shape) {
    if (!Number.isSafeInteger(d) || d < 0)
      throw new NpyError(`${what}: invalid dimension ${d} in shape [${array.shape}]`);
  }
  const count = elementCount(array.shape);
  if (count !== array.data.length) {
    throw new NpyError(`${what}: shape [${array.shape}] has ${count} elements but the data has ${array.data.length}`);
  }
  const shapeText = array.shape.length === 1 ? `(${array.shape[0]},)` : `(${array.shape.join(", ")})`;
  let header = `{'descr': '${DESCR_OF[array.dtype]}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  // Pad with spaces so magic + version + length + header + '\n' is a multiple of 64 (numpy >= 1.14
  // aligns this way so the data can be memory-mapped).
  const prefix = 10;
  const total = Math.ceil((prefix + header.length + 1) / 64) * 64;
  if (total - prefix > 0xffff) throw new NpyError(`${what}: shape is too long for a version 1.0 header`);
  header = `${header.padEnd(total - prefix - 1, " ")}\n`;
  // Typed arrays are little-endian on every platform Node runs on (x86-64, arm64).
  const payload = new Uint8Array(array.data.buffer, array.data.byteOffset, array.data.byteLength);
  const out = new Uint8Array(total + payload.byteLength);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[prefix + i] = header.charCodeAt(i);
  out.set(payload, total);
  return out;
}
