import { describe, expect, it } from "vitest";
import { GET } from "./route.ts";

describe("GET /api/health", () => {
  it("answers 200 with a JSON status that is never cached", async () => {
    const res = GET();
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(await res.json()).toMatchObject({ status: "ok", service: "web", uptimeSeconds: expect.any(Number) });
  });
});
