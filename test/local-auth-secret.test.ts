import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { localAuthSecret } from "../scripts/lib/auth-secret.ts";

describe("localAuthSecret", () => {
  const dir = mkdtempSync(join(tmpdir(), "kiln-secret-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("creates a random secret once, private to its owner, and returns the same one after", () => {
    const data = join(dir, "data");
    const first = localAuthSecret(data);
    expect(first).toMatch(/^[0-9a-f]{64}$/);
    expect(statSync(join(data, "auth-secret")).mode & 0o777).toBe(0o600);
    expect(localAuthSecret(data)).toBe(first);
    expect(localAuthSecret(join(dir, "other"))).not.toBe(first);
  });
});
