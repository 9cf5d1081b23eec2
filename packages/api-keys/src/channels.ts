/** Redis pub/sub channel on which revocations are announced to every verifier's cache. */
export const revocationChannel = (redisKeyPrefix: string) => `${redisKeyPrefix}api-keys:revoked`;

export type RevocationMessage = { keyId: string; hash: string };
