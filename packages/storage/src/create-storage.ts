import type { Config } from "@kiln/config";
import { createFsStorage } from "./fs-storage.ts";
import { createS3Storage } from "./s3-storage.ts";
import type { StorageProvider } from "./storage-provider.ts";

export type StorageConfig = Pick<
  Config,
  | "ARTIFACT_STORE"
  | "artifactDir"
  | "S3_BUCKET"
  | "S3_REGION"
  | "S3_ENDPOINT"
  | "S3_ACCESS_KEY_ID"
  | "S3_SECRET_ACCESS_KEY"
>;

/** The store ARTIFACT_STORE names: fs (default, under artifactDir) or s3. */
export function createStorage(config: StorageConfig): StorageProvider {
  switch (config.ARTIFACT_STORE) {
    case "fs":
      return createFsStorage(config.artifactDir);
    case "s3":
      return createS3Storage({
        // loadConfig guarantees the bucket when ARTIFACT_STORE=s3.
        bucket: config.S3_BUCKET ?? "",
        region: config.S3_REGION,
        endpoint: config.S3_ENDPOINT,
        credentials:
          config.S3_ACCESS_KEY_ID && config.S3_SECRET_ACCESS_KEY
            ? { accessKeyId: config.S3_ACCESS_KEY_ID, secretAccessKey: config.S3_SECRET_ACCESS_KEY }
            : undefined,
      });
  }
}
