// @kiln/api-keys: create, list and revoke organization API keys, and the one verifier that checks
// them (gateway, public API) with a cache that honours revocation promptly.
export { type RevocationMessage, revocationChannel } from "./channels.ts";
export {
  API_KEY_PREFIX,
  apiKeyFromAuthorizationHeader,
  type GeneratedApiKey,
  generateApiKey,
  hashApiKey,
  isWellFormedApiKey,
} from "./key-format.ts";
export {
  type ApiKeySummary,
  type CreateApiKeyInput,
  createApiKey,
  listApiKeys,
  revokeApiKey,
} from "./manage-api-keys.ts";
export { API_KEY_SCOPES, type ApiKeyScope, isApiKeyScope } from "./scopes.ts";
export {
  type ApiKeyFailureReason,
  type ApiKeyIdentity,
  type ApiKeyVerifier,
  type ApiKeyVerifierOptions,
  createApiKeyVerifier,
  type VerifyApiKeyResult,
} from "./verify-api-key.ts";
