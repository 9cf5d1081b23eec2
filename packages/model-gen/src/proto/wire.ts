// A minimal protobuf wire-format writer: just what ONNX's ModelProto needs (varints, fixed32,
// length-delimited bytes and nested messages). Large byte blobs (tensor raw_data) are kept by
// reference instead of copied, so a 400 MB BERT-base model is assembled without doubling memory.

enum WireType {
  Varint = 0,
  Fixed64 = 1,
  LengthDelimited = 2,
  Fixed32 = 5,
}

// Blobs at least this large are stored by reference rather than copied into the scratch buffer.
const BLOB_BY_REFERENCE_BYTES = 4096;
const TWO_POW_64 = 1n << 64n;
const textEncoder = new TextEncoder();

export class ProtoWriter {
  private readonly chunks: Uint8Array[] = [];
  private scratch = new Uint8Array(256);
  private pos = 0;
  private flushedBytes = 0;

  /** Total encoded bytes written so far. */
  get length(): number {
    return this.flushedBytes + this.pos;
  }

  /** An unsigned or signed 64-bit integer field (int64/int32/enum/bool). Negative values take 10 bytes, as protobuf requires. */
  int64(field: number, value: number | bigint): this {
    this.tag(field, WireType.Varint);
    this.varint(value);
    return this;
  }

  /** A float field (fixed32, little-endian). */
  float(field: number, value: number): this {
    this.tag(field, WireType.Fixed32);
    this.reserve(4);
    new DataView(this.scratch.buffer, this.scratch.byteOffset).setFloat32(this.pos, value, true);
    this.pos += 4;
    return this;
  }

  /** A double field (fixed64, little-endian). */
  double(field: number, value: number): this {
    this.tag(field, WireType.Fixed64);
    this.reserve(8);
    new DataView(this.scratch.buffer, this.scratch.byteOffset).setFloat64(this.pos, value, true);
    this.pos += 8;
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, textEncoder.encode(value));
  }

  bytes(field: number, value: Uint8Array): this {
    this.tag(field, WireType.LengthDelimited);
    this.varint(value.byteLength);
    this.raw(value);
    return this;
  }

  /** A nested message: its encoded length, then its bytes (taken over by reference). */
  message(field: number, sub: ProtoWriter): this {
    this.tag(field, WireType.LengthDelimited);
    this.varint(sub.length);
    this.flush();
    for (const chunk of sub.finish()) this.pushChunk(chunk);
    return this;
  }

  /** A packed repeated varint field (int64s written back to back inside one length-delimited record). */
  packedInt64(field: number, values: readonly (number | bigint)[]): this {
    const inner = new ProtoWriter();
    for (const v of values) inner.varint(v);
    this.tag(field, WireType.LengthDelimited);
    this.varint(inner.length);
    this.flush();
    for (const chunk of inner.finish()) this.pushChunk(chunk);
    return this;
  }

  /** A packed repeated float field. */
  packedFloat(field: number, values: readonly number[]): this {
    const data = new Float32Array(values);
    return this.bytes(field, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }

  /** The encoded message as a list of chunks (concatenate them, or write them one by one). */
  finish(): Uint8Array[] {
    this.flush();
    return this.chunks;
  }

  /** The encoded message as one contiguous buffer. */
  toBytes(): Uint8Array {
    const chunks = this.finish();
    if (chunks.length === 1 && chunks[0] !== undefined) return chunks[0];
    const out = new Uint8Array(this.length);
    let offset = 0;
    for (const chunk of chunks) {
      out.set(chunk, offset);
      offset += chunk.byteLength;
    }
    return out;
  }

  private tag(field: number, wire: WireType): void {
    if (!Number.isInteger(field) || field < 1 || field > 0x1fffffff) {
      throw new RangeError(`invalid protobuf field number ${field}`);
    }
    this.varint(field * 8 + wire);
  }

  private varint(value: number | bigint): void {
    if (typeof value === "number") {
      if (!Number.isInteger(value)) throw new RangeError(`varint must be an integer, got ${value}`);
      if (value >= 0 && value <= Number.MAX_SAFE_INTEGER) {
        this.reserve(10);
        let v = value;
        while (v >= 0x80) {
          this.scratch[this.pos++] = (v % 0x80) | 0x80;
          v = Math.floor(v / 0x80);
        }
        this.scratch[this.pos++] = v;
        return;
      }
      value = BigInt(value);
    }
    // Negative values are encoded as their 64-bit two's complement (always 10 bytes).
    let v = value < 0n ? value + TWO_POW_64 : value;
    if (v < 0n || v >= TWO_POW_64) throw new RangeError(`varint out of 64-bit range: ${value}`);
    this.reserve(10);
    while (v >= 0x80n) {
      this.scratch[this.pos++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.scratch[this.pos++] = Number(v);
  }

  private raw(data: Uint8Array): void {
    if (data.byteLength >= BLOB_BY_REFERENCE_BYTES) {
      this.flush();
      this.pushChunk(data);
      return;
    }
    this.reserve(data.byteLength);
    this.scratch.set(data, this.pos);
    this.pos += data.byteLength;
  }

  private reserve(bytes: number): void {
    if (this.pos + bytes <= this.scratch.byteLength) return;
    const grown = new Uint8Array(Math.max(this.scratch.byteLength * 2, this.pos + bytes));
    grown.set(this.scratch.subarray(0, this.pos));
    this.scratch = grown;
  }

  private flush(): void {
    if (this.pos === 0) return;
    this.pushChunk(this.scratch.slice(0, this.pos));
    this.pos = 0;
  }

  private pushChunk(chunk: Uint8Array): void {
    if (chunk.byteLength === 0) return;
    this.chunks.push(chunk);
    this.flushedBytes += chunk.byteLength;
  }
}
