import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/**
 * A secret of a local install (e.g. "auth-secret"): random on first start, then kept in
 * <dataDir>/<name> (readable by its owner only) so what it signs survives restarts. `next start`
 * runs in production mode, where Kiln refuses to start without its secrets.
 */
export function localSecret(dataDir: string, name: string): string {
  const file = join(dataDir, name);
  try {
    const existing = readFileSync(file, "utf8").trim();
    if (existing.length >= 32) return existing;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  mkdirSync(dataDir, { recursive: true });
  const secret = randomBytes(32).toString("hex");
  writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  return secret;
}

/** The session-signing secret of a local install. */
export const localAuthSecret = (dataDir: string) => localSecret(dataDir, "auth-secret");
