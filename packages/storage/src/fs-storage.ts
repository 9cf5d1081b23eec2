import { randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { access, mkdir, readFile, rename, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { notFound } from "@kiln/errors";
import { measuringStream, toNodeReadable } from "./measure-stream.ts";
import { assertValidKey, type PutOptions, type PutResult, type StorageProvider } from "./storage-provider.ts";

/**
 * Objects as files under `root` (.kiln/artifacts by default). A write goes to a temporary file in
 * the same filesystem and is renamed into place when complete, so readers never see half an object
 * and a failed write leaves nothing behind.
 */
export function createFsStorage(root: string): StorageProvider {
  const pathOf = (key: string) => {
    assertValidKey(key);
    return join(root, key);
  };
  const isMissing = (error: unknown) => (error as NodeJS.ErrnoException).code === "ENOENT";

  return {
    kind: "fs",
    async putStream(key, body, options: PutOptions = {}): Promise<PutResult> {
      const target = pathOf(key);
      const temporary = join(root, ".tmp", `${randomBytes(8).toString("hex")}.part`);
      await mkdir(dirname(temporary), { recursive: true });
      const measure = measuringStream(options.maxBytes);
      try {
        await pipeline(toNodeReadable(body), measure.stream, createWriteStream(temporary, { flags: "wx" }));
        await mkdir(dirname(target), { recursive: true });
        await rename(temporary, target);
      } catch (error) {
        await rm(temporary, { force: true });
        throw error;
      }
      return { key, ...measure.result() };
    },
    async getStream(key): Promise<Readable> {
      const path = pathOf(key);
      try {
        await access(path);
      } catch (error) {
        if (isMissing(error)) throw notFound("Stored object", key);
        throw error;
      }
      return createReadStream(path);
    },
    async getBytes(key) {
      try {
        return new Uint8Array(await readFile(pathOf(key)));
      } catch (error) {
        if (isMissing(error)) throw notFound("Stored object", key);
        throw error;
      }
    },
    async delete(key) {
      await rm(pathOf(key), { force: true });
    },
    async exists(key) {
      try {
        await access(pathOf(key));
        return true;
      } catch (error) {
        if (isMissing(error)) return false;
        throw error;
      }
    },
  };
}
