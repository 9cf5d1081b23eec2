import { createHash } from "node:crypto";
import { Readable, Transform } from "node:stream";
import { SizeLimitExceededError } from "./storage-provider.ts";

/** A pass-through that counts bytes, hashes them and fails the stream past `maxBytes`. */
export function measuringStream(maxBytes = Number.POSITIVE_INFINITY) {
  const hash = createHash("sha256");
  let sizeBytes = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      sizeBytes += chunk.length;
      if (sizeBytes > maxBytes) {
        callback(new SizeLimitExceededError(maxBytes));
        return;
      }
      hash.update(chunk);
      callback(null, chunk);
    },
  });
  return { stream, result: () => ({ sizeBytes, sha256: hash.digest("hex") }) };
}

export function toNodeReadable(body: Readable | ReadableStream<Uint8Array>): Readable {
  // Web streams come from fetch/Next.js route handlers; node:stream's pipeline wants Node streams.
  return body instanceof Readable
    ? body
    : Readable.fromWeb(body as import("node:stream/web").ReadableStream<Uint8Array>);
}
