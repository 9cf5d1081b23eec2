// @kiln/storage: where uploaded models and built engines live (filesystem or S3-compatible).
export { createStorage, type StorageConfig } from "./create-storage.ts";
export { createFsStorage } from "./fs-storage.ts";
export { createS3Storage, type S3StorageOptions } from "./s3-storage.ts";
export {
  assertValidKey,
  formatBytes,
  type PutOptions,
  type PutResult,
  SizeLimitExceededError,
  type StorageProvider,
} from "./storage-provider.ts";
