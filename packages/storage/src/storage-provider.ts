import type { Readable } from "node:stream";
import { KilnError } from "@kiln/errors";

export type PutResult = { key: string; sizeBytes: number; sha256: string };

export type PutOptions = {
  /** The stream is cut off, and nothing is kept, once it passes this many bytes. */
  maxBytes?: number;
  contentType?: string;
};

/**
 * Where uploaded models and built engines live. Writes are streamed: no provider holds a whole
 * object in memory, and an object appears under its key only once it was written completely.
 */
export interface StorageProvider {
  readonly kind: "fs" | "s3";
  /** Streams `body` to `key`, counting bytes and computing SHA-256 on the way. */
  putStream(key: string, body: Readable | ReadableStream<Uint8Array>, options?: PutOptions): Promise<PutResult>;
  /** Throws KilnError NOT_FOUND when there is no such object. */
  getStream(key: string): Promise<Readable>;
  /** The whole object in memory: only for consumers that need bytes (the native reader and builder). */
  getBytes(key: string): Promise<Uint8Array>;
  /** Deleting a missing object is not an error. */
  delete(key: string): Promise<void>;
  exists(key: string): Promise<boolean>;
}

export class SizeLimitExceededError extends KilnError {
  constructor(readonly maxBytes: number) {
    super("PAYLOAD_TOO_LARGE", `The file is larger than the limit of ${formatBytes(maxBytes)}`);
  }
}

/** Keys are relative paths of safe segments; anything that could escape the store is refused. */
export function assertValidKey(key: string): void {
  const segments = key.split("/");
  const isSafe = segments.every((s) => /^[A-Za-z0-9._-]+$/.test(s) && s !== "." && s !== "..");
  if (!isSafe || key.length > 512) throw new KilnError("BAD_REQUEST", `Invalid storage key "${key}"`);
}

export function formatBytes(bytes: number): string {
  const units = ["bytes", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} bytes` : `${Number.isInteger(value) ? value : value.toFixed(1)} ${units[unit]}`;
}
