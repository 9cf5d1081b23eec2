import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  S3Client,
  type S3ClientConfig,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { notFound } from "@kiln/errors";
import { measuringStream, toNodeReadable } from "./measure-stream.ts";
import { assertValidKey, type PutOptions, type PutResult, type StorageProvider } from "./storage-provider.ts";

export type S3StorageOptions = {
  bucket: string;
  region: string;
  /** A non-AWS S3-compatible endpoint (MinIO, R2); path-style addressing is used with it. */
  endpoint?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string };
};

const isNotFound = (error: unknown) => {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === "NotFound" || e.name === "NoSuchKey" || e.$metadata?.httpStatusCode === 404;
};

/**
 * Objects in an S3-compatible bucket. Uploads are multipart (lib-storage), so memory stays at a few
 * parts however large the file; an upload cut off by the size limit is aborted and leaves no object.
 */
export function createS3Storage(options: S3StorageOptions): StorageProvider {
  const config: S3ClientConfig = {
    region: options.region,
    ...(options.endpoint ? { endpoint: options.endpoint, forcePathStyle: true } : {}),
    ...(options.credentials ? { credentials: options.credentials } : {}),
  };
  const client = new S3Client(config);
  const Bucket = options.bucket;

  return {
    kind: "s3",
    async putStream(key, body, putOptions: PutOptions = {}): Promise<PutResult> {
      assertValidKey(key);
      const measure = measuringStream(putOptions.maxBytes);
      const upload = new Upload({
        client,
        params: { Bucket, Key: key, Body: measure.stream, ContentType: putOptions.contentType },
      });
      const feeding = pipeline(toNodeReadable(body), measure.stream);
      // The feeding stream fails first on a size limit; abort so no partial multipart upload remains.
      const [fed, uploaded] = await Promise.allSettled([feeding, upload.done()]);
      if (fed.status === "rejected") {
        await upload.abort().catch(() => {});
        throw fed.reason;
      }
      if (uploaded.status === "rejected") throw uploaded.reason;
      return { key, ...measure.result() };
    },
    async getStream(key) {
      assertValidKey(key);
      try {
        const object = await client.send(new GetObjectCommand({ Bucket, Key: key }));
        return object.Body as Readable;
      } catch (error) {
        if (isNotFound(error)) throw notFound("Stored object", key);
        throw error;
      }
    },
    async getBytes(key) {
      const stream = await this.getStream(key);
      const chunks: Buffer[] = [];
      for await (const chunk of stream) chunks.push(chunk as Buffer);
      return new Uint8Array(Buffer.concat(chunks));
    },
    async delete(key) {
      assertValidKey(key);
      await client.send(new DeleteObjectCommand({ Bucket, Key: key }));
    },
    async exists(key) {
      assertValidKey(key);
      try {
        await client.send(new HeadObjectCommand({ Bucket, Key: key }));
        return true;
      } catch (error) {
        if (isNotFound(error)) return false;
        throw error;
      }
    },
  };
}
