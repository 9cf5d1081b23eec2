import { describe, expect, it } from "vitest";
import { safeNext } from "./safe-next.ts";

describe("where to go after signing in", () => {
  it("follows same-site paths", () => {
    expect(safeNext("/invite/inv_01")).toBe("/invite/inv_01");
  });

  it("refuses other sites and falls back to the models page", () => {
    for (const next of ["https://evil.example", "//evil.example/x", "javascript:alert(1)", "", null, undefined]) {
      expect(safeNext(next)).toBe("/models");
    }
  });
});
