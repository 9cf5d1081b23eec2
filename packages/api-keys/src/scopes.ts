/**
 * What a key may do. `inference` calls deployments; `read-only` reads the org's resources through the
 * public API; `admin` may also change them. A key restricted to a deployment may only call that one.
 */
export const API_KEY_SCOPES = ["inference", "read-only", "admin"] as const;
export type ApiKeyScope = (typeof API_KEY_SCOPES)[number];

export function isApiKeyScope(value: string): value is ApiKeyScope {
  return (API_KEY_SCOPES as readonly string[]).includes(value);
}
