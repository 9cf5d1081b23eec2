// @kiln/serving: the serving core shared by the gateway and the worker.
export { type BatchedResult, type BatchPolicy, DynamicBatcher, isBatchable } from "./batching/dynamic-batcher.ts";
export { callApart, type Done, promised } from "./callbacks.ts";
export {
  createDeployment,
  type DeploymentDeps,
  deleteDeployment,
  drainDeployment,
  drainingKey,
  type LiveStatus,
  listDeployments,
  resumeDeployment,
  type ServingPolicy,
  updateDeploymentPolicy,
} from "./deployments/manage-deployments.ts";
export {
  ensureAllMinReplicas,
  ensureMinReplicas,
  type MinReplicaDeps,
  MinReplicaKeeper,
} from "./deployments/min-replicas.ts";
export { badRequest, SERVING_ERROR_STATUS, ServingError, type ServingErrorCode } from "./errors.ts";
export { DTYPE_TO_V2, isV2Datatype, V2_TO_DTYPE, type V2Datatype } from "./protocol/datatypes.ts";
export {
  allBinary,
  decodeInferRequest,
  decodeInferResponse,
  type EncodedBody,
  encodeClientResponse,
  encodeInferRequest,
  encodeInferResponse,
  type InferRequest,
  type InferResponse,
  type NamedTensor,
  type RequestedOutput,
} from "./protocol/infer-codec.ts";
export { fitsProfile, type ServingSignature, validateInputs, validateOutputs } from "./protocol/validate-inputs.ts";
export { bullPrefix, type LoadJob, LoadQueue, loadQueueName } from "./registry/load-queue.ts";
export { type ReplicaRecord, ReplicaRegistry, type ReplicaStatus } from "./registry/replica-registry.ts";
export {
  hostIdentity,
  isSameHost,
  type LocalSocketSetting,
  localSocketSetting,
  newSocketPath,
  removeStaleSockets,
} from "./routing/local-socket.ts";
export {
  decodeRequestFrame,
  decodeResponseFrame,
  FrameReader,
  FrameWriter,
  MUX_PATH,
  MUX_PROTOCOL,
  MUX_PROTOCOL_2,
  type MuxProtocol,
  type MuxRequestFrame,
  type MuxResponseFrame,
} from "./routing/mux-frames.ts";
export {
  type AnswerCallback,
  type ForwardedAnswer,
  forwardOverHttp,
  forwardToReplica,
  muxTransportOf,
  type ReplicaEndpoint,
  type ReplicaRequest,
  ReplicaUnreachableError,
  sendToReplica,
} from "./routing/replica-client.ts";
export { ReplicaRouter, type RoutedAnswer, type RouteEvents, type ServedDeployment } from "./routing/replica-router.ts";
export { SIGNATURE_HEADER, signWebhook, webhookSecretFor } from "./webhooks/webhook-signature.ts";
export {
  checkWebhookUrl,
  guardedLookup,
  isPrivateAddress,
  postWebhook,
  WebhookTargetRefusedError,
  type WebhookUrlPolicy,
} from "./webhooks/webhook-url.ts";
