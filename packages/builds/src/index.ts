// @kiln/builds: the build queues (one BullMQ queue per target), job payloads, progress events and
// the cache key. The processor lives in apps/worker/src/builds.
export { type BuildOptionsForKey, buildCacheKey } from "./cache-key.ts";
export {
  BUILD_JOB_VERSION,
  type BuildEvent,
  type BuildJob,
  type BuildQueues,
  buildCancelChannel,
  buildEventsKey,
  buildQueueName,
  bullPrefix,
  createBuildQueues,
  ZBuildJob,
} from "./queues.ts";
