// @kiln/sdk: call Kiln endpoints from your application.
export { type InferOptions, type InferResult, KilnClient, type KilnClientOptions, type Prediction } from "./client.ts";
export { KilnApiError, WebhookVerificationError } from "./errors.ts";
export type { Datatype, DatatypeData, Tensor, TensorInput } from "./tensors.ts";
export { SIGNATURE_HEADER, verifyWebhook, type WebhookEvent } from "./webhooks.ts";
