import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ZEnv } from "./env.ts";

// .env.example is the documentation people read; it must name exactly the variables Kiln reads.
describe(".env.example", () => {
  const text = readFileSync(new URL("../../../.env.example", import.meta.url), "utf8");
  const documented = [...text.matchAll(/^#?\s?([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1]).sort();

  it("lists every variable of the schema, and no other", () => {
    expect(documented).toEqual(Object.keys(ZEnv.shape).sort());
  });

  it("has a comment line above every variable", () => {
    const lines = text.split("\n");
    lines.forEach((line, i) => {
      if (/^#?\s?[A-Z][A-Z0-9_]+=/.test(line) && !/^# [A-Z0-9_]+=/.test(lines[i - 1] ?? "")) {
        expect(lines[i - 1], `comment above ${line}`).toMatch(/^# \S/);
      }
    });
  });
});
