import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { isKilnError } from "@kiln/errors";
import S3rver from "s3rver";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createFsStorage } from "./fs-storage.ts";
import { createS3Storage } from "./s3-storage.ts";
import { SizeLimitExceededError, type StorageProvider } from "./storage-provider.ts";

/** A body that arrives in many chunks, as an upload does. */
function chunked(bytes: Uint8Array, chunkSize = 64 * 1024): Readable {
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += chunkSize) chunks.push(Buffer.from(bytes.subarray(i, i + chunkSize)));
  return Readable.from(chunks);
}
const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

// The same contract, on both providers: the filesystem, and S3 through the real AWS SDK against
// s3rver (a local S3-compatible server).
const providers: {
  name: string;
  setup: () => Promise<{ storage: StorageProvider; leftovers: () => Promise<string[]>; close: () => Promise<void> }>;
}[] = [
  {
    name: "fs",
    setup: async () => {
      const root = await mkdtemp(join(tmpdir(), "kiln-storage-"));
      const walk = async (dir: string): Promise<string[]> => {
        const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
        const nested = await Promise.all(
          entries.map((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)])),
        );
        return nested.flat();
      };
      return {
        storage: createFsStorage(root),
        leftovers: () => walk(root),
        close: () => rm(root, { recursive: true, force: true }),
      };
    },
  },
  {
    name: "s3",
    setup: async () => {
      const directory = await mkdtemp(join(tmpdir(), "kiln-s3rver-"));
      const server = new S3rver({
        port: 0,
        address: "127.0.0.1",
        silent: true,
        directory,
        configureBuckets: [{ name: "kiln-test" }],
      });
      const address = await server.run();
      const storage = createS3Storage({
        bucket: "kiln-test",
        region: "us-east-1",
        endpoint: `http://127.0.0.1:${address.port}`,
        credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
      });
      const leftovers = async () => {
        const objects = await readdir(join(directory, "kiln-test"), { recursive: true }).catch(() => []);
        return objects.filter((name) => String(name).endsWith("._S3rver_object"));
      };
      return {
        storage,
        leftovers,
        close: async () => {
          await server.close();
          await rm(directory, { recursive: true, force: true });
        },
      };
    },
  },
];

describe.each(providers)("$name storage", ({ setup }) => {
  let env: Awaited<ReturnType<(typeof providers)[number]["setup"]>>;
  beforeAll(async () => {
    env = await setup();
  });
  afterAll(async () => {
    await env?.close();
  });

  it("streams an object in, with its size and SHA-256, and back out", async () => {
    const bytes = new Uint8Array(randomBytes(6 * 1024 * 1024 + 123));
    const result = await env.storage.putStream("models/org_1/a.onnx", chunked(bytes), { maxBytes: 10 * 1024 * 1024 });
    expect(result).toEqual({ key: "models/org_1/a.onnx", sizeBytes: bytes.length, sha256: sha256(bytes) });
    expect(await env.storage.exists("models/org_1/a.onnx")).toBe(true);
    expect(sha256(await readAll(await env.storage.getStream("models/org_1/a.onnx")))).toBe(sha256(bytes));
    expect(sha256(await env.storage.getBytes("models/org_1/a.onnx"))).toBe(sha256(bytes));

    // Web streams (what fetch and Next.js route handlers give) work the same way.
    const web = new Response(bytes.slice(0, 1000)).body as ReadableStream<Uint8Array>;
    expect((await env.storage.putStream("models/org_1/b.onnx", web)).sizeBytes).toBe(1000);

    await env.storage.delete("models/org_1/a.onnx");
    await env.storage.delete("models/org_1/a.onnx"); // deleting a missing object is fine
    expect(await env.storage.exists("models/org_1/a.onnx")).toBe(false);
    await expect(env.storage.getStream("models/org_1/a.onnx")).rejects.toMatchObject({ code: "NOT_FOUND" });
    await env.storage.delete("models/org_1/b.onnx");
  });

  it("cuts a stream off past the size limit and keeps nothing of it", async () => {
    const before = await env.leftovers();
    const bytes = new Uint8Array(randomBytes(6 * 1024 * 1024));
    const attempt = env.storage.putStream("models/org_1/big.onnx", chunked(bytes), { maxBytes: 5 * 1024 * 1024 });
    await expect(attempt).rejects.toBeInstanceOf(SizeLimitExceededError);
    await expect(attempt).rejects.toMatchObject({
      code: "PAYLOAD_TOO_LARGE",
      message: "The file is larger than the limit of 5 MB",
    });
    expect(await env.storage.exists("models/org_1/big.onnx")).toBe(false);
    expect(await env.leftovers()).toEqual(before);
  });

  it("refuses keys that could escape the store", async () => {
    for (const key of ["../etc/passwd", "/abs", "a//b", "a/./b", "a b"]) {
      const error = await env.storage.putStream(key, chunked(new Uint8Array(1))).catch((e: unknown) => e);
      expect(isKilnError(error, "BAD_REQUEST"), key).toBe(true);
    }
  });
});
