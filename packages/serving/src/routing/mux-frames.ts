// The gateway -> worker hop's multiplexed framing: after an HTTP/1.1 Upgrade on the worker's
// serving port, one TCP connection carries any number of concurrent inference requests, each a
// length-prefixed binary frame with a request id; answers come back in any order. This replaces
// one HTTP request/response (headers written and parsed on both sides) per inference with a small
// fixed header, and lets one socket write carry every frame of an event-loop turn.
//
// kiln-mux/2 (what gateways ask for):
// Request frame:  u32 length (of what follows) | u32 id | u8 replica-id length | replica id (ASCII)
//                 | i32 Inference-Header-Content-Length (-1: none) | u16 model-name length | model
//                 name (UTF-8) | u16 model-version length | model version (UTF-8) | body (KServe v2
//                 request: the client's JSON as it came, or binary)
// Response frame: u32 length | u32 id | u16 status | i32 header length (-1: none) | f64 compute ms
//                 | f64 queue ms | u32 batch size | f64 batch share | body
// A 200 answer's body is the client's answer as the gateway sends it: the outputs the request asked
// for, JSON or binary as it asked, named by the model name and version of the request frame (the
// gateway passes the bytes on without decoding them). Other statuses carry {"error": "..."}.
// kiln-mux/1 (older gateways; workers still answer it): request frames without the model name and
// version, and a 200 answer is every output in binary, named by the deployment id.
// Integers and floats are little-endian.
import type { Socket } from "node:net";

export const MUX_PROTOCOL = "kiln-mux/1";
export const MUX_PROTOCOL_2 = "kiln-mux/2";
export type MuxProtocol = typeof MUX_PROTOCOL | typeof MUX_PROTOCOL_2;
export const MUX_PATH = "/v2/mux";
/** Frames larger than this are refused (the connection is closed): matches the worker's HTTP body limit. */
export const MUX_MAX_FRAME_BYTES = 256 * 1024 * 1024 + 1024;

export interface MuxRequestFrame {
  id: number;
  replicaId: string;
  headerLength?: number;
  /** kiln-mux/2: the model as the client's answer names it (the worker encodes that answer). */
  model?: { name: string; version: string };
  body: Buffer;
}

export interface MuxResponseFrame {
  id: number;
  status: number;
  headerLength?: number;
  computeMs: number;
  queueMs: number;
  batchSize: number;
  batchShare: number;
  body: Buffer;
}

const RESPONSE_HEAD = 4 + 4 + 2 + 4 + 8 + 8 + 4 + 8;
/** Bodies up to this size are copied behind their frame header (one write); larger ones are written as they are. */
const COPY_LIMIT = 16 * 1024;

/** A frame's head (and its body, when `copyBody` is given); with `frame.model`, a kiln-mux/2 frame. */
export function encodeRequestHead(frame: Omit<MuxRequestFrame, "body">, bodyBytes: number, copyBody?: Buffer): Buffer {
  const idLength = Buffer.byteLength(frame.replicaId, "latin1");
  if (idLength > 255) throw new Error(`replica id ${frame.replicaId} is too long`);
  const model = frame.model;
  const nameBytes = model ? Buffer.byteLength(model.name) : 0;
  const versionBytes = model ? Buffer.byteLength(model.version) : 0;
  if (nameBytes > 0xffff || versionBytes > 0xffff) throw new Error("model name or version is too long for a frame");
  const head = 4 + 4 + 1 + idLength + 4 + (model ? 4 + nameBytes + versionBytes : 0);
  const out = Buffer.allocUnsafe(head + (copyBody ? bodyBytes : 0));
  out.writeUInt32LE(head - 4 + bodyBytes, 0);
  out.writeUInt32LE(frame.id, 4);
  out.writeUInt8(idLength, 8);
  out.write(frame.replicaId, 9, "latin1");
  let at = 9 + idLength;
  out.writeInt32LE(frame.headerLength ?? -1, at);
  at += 4;
  if (model) {
    out.writeUInt16LE(nameBytes, at);
    at += 2 + out.write(model.name, at + 2, "utf8");
    out.writeUInt16LE(versionBytes, at);
    at += 2 + out.write(model.version, at + 2, "utf8");
  }
  if (copyBody) copyBody.copy(out, head);
  return out;
}

/** A request frame's payload (without its length prefix), as sent over `protocol`. */
export function decodeRequestFrame(payload: Buffer, protocol: MuxProtocol = MUX_PROTOCOL): MuxRequestFrame {
  const fixed = 4 + 1;
  if (payload.byteLength < fixed) throw new Error(`request frame of ${payload.byteLength} bytes is truncated`);
  const id = payload.readUInt32LE(0);
  const idLength = payload.readUInt8(4);
  let at = fixed + idLength;
  if (payload.byteLength < at + 4) throw new Error(`request frame ${id} is truncated`);
  const replicaId = payload.toString("latin1", fixed, at);
  const headerLength = payload.readInt32LE(at);
  at += 4;
  let model: MuxRequestFrame["model"];
  if (protocol === MUX_PROTOCOL_2) {
    const name = readString(payload, at, id);
    at = name.end;
    const version = readString(payload, at, id);
    at = version.end;
    model = { name: name.value, version: version.value };
  }
  return {
    id,
    replicaId,
    headerLength: headerLength < 0 ? undefined : headerLength,
    model,
    body: payload.subarray(at),
  };
}

/** A u16-length-prefixed UTF-8 string at `at`. */
function readString(payload: Buffer, at: number, id: number): { value: string; end: number } {
  if (payload.byteLength < at + 2) throw new Error(`request frame ${id} is truncated`);
  const end = at + 2 + payload.readUInt16LE(at);
  if (payload.byteLength < end) throw new Error(`request frame ${id} is truncated`);
  return { value: payload.toString("utf8", at + 2, end), end };
}

function encodeResponseHead(frame: Omit<MuxResponseFrame, "body">, bodyBytes: number, copyBody?: Buffer): Buffer {
  const out = Buffer.allocUnsafe(RESPONSE_HEAD + (copyBody ? bodyBytes : 0));
  out.writeUInt32LE(RESPONSE_HEAD - 4 + bodyBytes, 0);
  out.writeUInt32LE(frame.id, 4);
  out.writeUInt16LE(frame.status, 8);
  out.writeInt32LE(frame.headerLength ?? -1, 10);
  out.writeDoubleLE(frame.computeMs, 14);
  out.writeDoubleLE(frame.queueMs, 22);
  out.writeUInt32LE(frame.batchSize, 30);
  out.writeDoubleLE(frame.batchShare, 34);
  if (copyBody) copyBody.copy(out, RESPONSE_HEAD);
  return out;
}

export function decodeResponseFrame(payload: Buffer): MuxResponseFrame {
  if (payload.byteLength < RESPONSE_HEAD - 4) {
    throw new Error(`response frame of ${payload.byteLength} bytes is shorter than its ${RESPONSE_HEAD - 4}-byte head`);
  }
  const headerLength = payload.readInt32LE(6);
  return {
    id: payload.readUInt32LE(0),
    status: payload.readUInt16LE(4),
    headerLength: headerLength < 0 ? undefined : headerLength,
    computeMs: payload.readDoubleLE(10),
    queueMs: payload.readDoubleLE(18),
    batchSize: payload.readUInt32LE(26),
    batchShare: payload.readDoubleLE(30),
    body: payload.subarray(RESPONSE_HEAD - 4),
  };
}

/**
 * Writes frames to a socket, corked until the event loop's check phase (setImmediate, as ioredis's
 * auto-pipelining does): every frame queued by the I/O callbacks of one loop iteration leaves in
 * one writev.
 */
export class FrameWriter {
  #corked = false;
  constructor(private readonly socket: Socket) {}

  #cork(): void {
    if (this.#corked) return;
    this.#corked = true;
    this.socket.cork();
    setImmediate(() => {
      this.#corked = false;
      this.socket.uncork();
    });
  }

  request(frame: MuxRequestFrame): void {
    const small = frame.body.byteLength <= COPY_LIMIT;
    this.#cork();
    this.socket.write(encodeRequestHead(frame, frame.body.byteLength, small ? frame.body : undefined));
    if (!small) this.socket.write(frame.body);
  }

  response(frame: MuxResponseFrame): void {
    if (this.socket.destroyed) return;
    const small = frame.body.byteLength <= COPY_LIMIT;
    this.#cork();
    this.socket.write(encodeResponseHead(frame, frame.body.byteLength, small ? frame.body : undefined));
    if (!small) this.socket.write(frame.body);
  }
}

/**
 * Splits a byte stream into frame payloads (without their length prefix). `onFrame` gets a view
 * that stays valid (chunks are never reused); a frame over the limit is an error.
 */
export class FrameReader {
  #chunks: Buffer[] = [];
  #buffered = 0;
  #need = -1;

  constructor(
    private readonly onFrame: (payload: Buffer) => void,
    private readonly maxFrameBytes = MUX_MAX_FRAME_BYTES,
  ) {}

  push(chunk: Buffer): void {
    // Fast path: nothing buffered, and the chunk holds whole frames.
    let data = chunk;
    if (this.#buffered > 0) {
      this.#chunks.push(chunk);
      this.#buffered += chunk.byteLength;
      if (this.#need >= 0 && this.#buffered < this.#need) return;
      if (this.#need < 0 && this.#buffered < 4) return;
      data = Buffer.concat(this.#chunks, this.#buffered);
      this.#chunks = [];
      this.#buffered = 0;
      this.#need = -1;
    }
    let offset = 0;
    while (data.byteLength - offset >= 4) {
      const length = data.readUInt32LE(offset);
      if (length > this.maxFrameBytes) throw new Error(`frame of ${length} bytes exceeds ${this.maxFrameBytes}`);
      if (data.byteLength - offset - 4 < length) {
        this.#need = 4 + length;
        break;
      }
      this.onFrame(data.subarray(offset + 4, offset + 4 + length));
      offset += 4 + length;
    }
    if (offset < data.byteLength) {
      this.#chunks.push(data.subarray(offset));
      this.#buffered = data.byteLength - offset;
    }
  }
}
