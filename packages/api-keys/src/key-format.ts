import { createHash, randomBytes } from "node:crypto";

/** Every Kiln API key starts with this, so a leaked key is easy to recognise (and to scan for). */
export const API_KEY_PREFIX = "kiln_live_";
// 32 base62 characters: about 190 bits of randomness.
const SECRET_LENGTH = 32;
// The part of the key kept in the database and shown in the dashboard: "kiln_live_" + 8 characters.
const VISIBLE_LENGTH = API_KEY_PREFIX.length + 8;
const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const WELL_FORMED = new RegExp(`^${API_KEY_PREFIX}[0-9A-Za-z]{${SECRET_LENGTH}}$`);

export type GeneratedApiKey = {
  /** The whole key: shown to its creator once, never stored. */
  key: string;
  /** Its visible start, e.g. "kiln_live_ab12CD34". */
  prefix: string;
  /** SHA-256 of the whole key, hex: what verification looks up. */
  hash: string;
};

export function generateApiKey(): GeneratedApiKey {
  let secret = "";
  // Rejection sampling keeps every character uniform (256 is not a multiple of 62).
  while (secret.length < SECRET_LENGTH) {
    for (const byte of randomBytes(SECRET_LENGTH)) {
      if (byte < 248 && secret.length < SECRET_LENGTH) secret += BASE62[byte % 62];
    }
  }
  const key = `${API_KEY_PREFIX}${secret}`;
  return { key, prefix: key.slice(0, VISIBLE_LENGTH), hash: hashApiKey(key) };
}

/**
 * A key is a 190-bit random secret, so one fast unsalted hash is enough: nobody can brute-force the
 * preimage, and the lookup stays a single indexed equality on `api_keys.hash`.
 */
export function hashApiKey(key: string): string {
  return createHash("sha256").update(key).digest("hex");
}

export function isWellFormedApiKey(token: string): boolean {
  return WELL_FORMED.test(token);
}

/** The key from an `Authorization: Bearer kiln_live_…` header, or null when there is none. */
export function apiKeyFromAuthorizationHeader(header: string | null | undefined): string | null {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
  return match?.[1] ?? null;
}
