import { describe, expect, it } from "vitest";
import { ID_PREFIXES, isId, newId } from "./ids.ts";

describe("newId", () => {
  it("carries the type prefix and 26 base32 characters", () => {
    for (const prefix of Object.values(ID_PREFIXES)) {
      const id = newId(prefix);
      expect(id).toMatch(new RegExp(`^${prefix}_[0-9A-HJKMNP-TV-Z]{26}$`));
      expect(isId(id, prefix)).toBe(true);
    }
  });

  it("encodes the time first, so ids sort by creation time", () => {
    const earlier = newId("bld", Date.UTC(2025, 0, 1));
    const later = newId("bld", Date.UTC(2025, 0, 1) + 1);
    expect(earlier < later).toBe(true);
    // The ULID of the Unix epoch starts with ten zeros.
    expect(newId("org", 0).slice(4, 14)).toBe("0000000000");
  });

  it("does not repeat", () => {
    const ids = new Set(Array.from({ length: 10_000 }, () => newId("prd", 1_700_000_000_000)));
    expect(ids.size).toBe(10_000);
  });

  it("rejects ids of another type or shape", () => {
    expect(isId(newId("org"), "usr")).toBe(false);
    expect(isId("org_123")).toBe(false);
    expect(isId(`zzz_${"0".repeat(26)}`)).toBe(false);
    expect(isId(`org_${"I".repeat(26)}`)).toBe(false);
  });
});
