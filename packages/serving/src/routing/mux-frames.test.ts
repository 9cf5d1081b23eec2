import { describe, expect, it } from "vitest";
import {
  decodeRequestFrame,
  decodeResponseFrame,
  encodeRequestHead,
  FrameReader,
  FrameWriter,
  MUX_PROTOCOL,
  MUX_PROTOCOL_2,
  type MuxRequestFrame,
  type MuxResponseFrame,
} from "./mux-frames.ts";

/** A socket stand-in that records what is written. */
function fakeSocket() {
  const written: Buffer[] = [];
  const socket = {
    destroyed: false,
    cork() {},
    uncork() {},
    write(chunk: Buffer) {
      written.push(Buffer.from(chunk));
      return true;
    },
  };
  return { socket, bytes: () => Buffer.concat(written) };
}

describe("kiln-mux/1 frames", () => {
  it("round-trips requests and responses, small and large bodies, through any chunking", async () => {
    const { socket, bytes } = fakeSocket();
    const writer = new FrameWriter(socket as never);
    const big = Buffer.alloc(100_000, 7);
    const requests: MuxRequestFrame[] = [
      { id: 1, replicaId: "rep_0123456789abcdef", headerLength: 42, body: Buffer.from("x".repeat(50)) },
      { id: 0xffff_fffe, replicaId: "rep_a", body: big },
      { id: 3, replicaId: "r", headerLength: 0, body: Buffer.alloc(0) },
    ];
    for (const r of requests) writer.request(r);
    const responses: MuxResponseFrame[] = [
      {
        id: 9,
        status: 200,
        headerLength: 12,
        computeMs: 0.125,
        queueMs: 1.5,
        batchSize: 16,
        batchShare: 1 / 16,
        body: Buffer.from("hello world!bytes"),
      },
      { id: 10, status: 410, computeMs: 0, queueMs: 0, batchSize: 0, batchShare: 0, body: big },
    ];
    for (const r of responses) writer.response(r);
    await new Promise((resolve) => setImmediate(resolve));
    const stream = bytes();

    for (const chunkSize of [1, 3, 7, 64, 4096, stream.byteLength]) {
      const frames: Buffer[] = [];
      const reader = new FrameReader((payload) => frames.push(Buffer.from(payload)));
      for (let i = 0; i < stream.byteLength; i += chunkSize) reader.push(stream.subarray(i, i + chunkSize));
      expect(frames).toHaveLength(5);
      for (const [i, r] of requests.entries()) {
        const got = decodeRequestFrame(frames[i] as Buffer);
        expect(got.id).toBe(r.id);
        expect(got.replicaId).toBe(r.replicaId);
        expect(got.headerLength).toBe(r.headerLength);
        expect(got.body.equals(r.body)).toBe(true);
      }
      for (const [i, r] of responses.entries()) {
        const got = decodeResponseFrame(frames[3 + i] as Buffer);
        expect({ ...got, body: undefined }).toEqual({ ...r, body: undefined });
        expect(got.body.equals(r.body)).toBe(true);
      }
    }
  });

  it("round-trips kiln-mux/2 request frames (model name and version, UTF-8, empty) through any chunking", async () => {
    const { socket, bytes } = fakeSocket();
    const writer = new FrameWriter(socket as never);
    const requests: MuxRequestFrame[] = [
      { id: 1, replicaId: "rep_a", model: { name: "dense", version: "3" }, body: Buffer.from('{"inputs":[]}') },
      {
        id: 2,
        replicaId: "rep_b",
        headerLength: 5,
        model: { name: "modèle-ü", version: "" },
        body: Buffer.alloc(70_000, 1),
      },
      { id: 3, replicaId: "r", model: { name: "", version: "12" }, body: Buffer.alloc(0) },
    ];
    for (const r of requests) writer.request(r);
    await new Promise((resolve) => setImmediate(resolve));
    const stream = bytes();
    for (const chunkSize of [1, 5, 4096, stream.byteLength]) {
      const frames: Buffer[] = [];
      const reader = new FrameReader((payload) => frames.push(Buffer.from(payload)));
      for (let i = 0; i < stream.byteLength; i += chunkSize) reader.push(stream.subarray(i, i + chunkSize));
      expect(frames).toHaveLength(3);
      for (const [i, r] of requests.entries()) {
        const got = decodeRequestFrame(frames[i] as Buffer, MUX_PROTOCOL_2);
        expect({ ...got, body: undefined }).toEqual({ ...r, body: undefined });
        expect(got.body.equals(r.body)).toBe(true);
      }
    }
  });

  it("refuses truncated frames with an error that says so", () => {
    const frame = encodeRequestHead(
      { id: 7, replicaId: "rep_a", model: { name: "dense", version: "3" } },
      3,
      Buffer.from("abc"),
    ).subarray(4);
    // Cut before the replica id, inside the header length, inside the model name, inside the
    // version's length and before the version.
    for (const end of [2, 12, 17, 22, 23]) {
      expect(() => decodeRequestFrame(frame.subarray(0, end), MUX_PROTOCOL_2)).toThrow(/truncated/);
    }
    expect(decodeRequestFrame(frame, MUX_PROTOCOL_2).body.toString()).toBe("abc");
    // A kiln-mux/1 reader takes the same bytes as body after the header length (no model).
    expect(decodeRequestFrame(frame, MUX_PROTOCOL).model).toBeUndefined();
    expect(() => decodeResponseFrame(Buffer.alloc(20))).toThrow(/shorter than its 38-byte head/);
  });

  it("refuses a frame over the limit", () => {
    const reader = new FrameReader(() => undefined, 1_000);
    const head = encodeRequestHead({ id: 1, replicaId: "r" }, 5_000);
    expect(() => reader.push(head)).toThrow(/exceeds 1000/);
  });
});
