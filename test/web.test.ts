import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, type Started, startGroup, WEB_DIR, waitUntil } from "./support.ts";

// The production build of apps/web over real HTTP. scripts/test.ts builds it before the tests run.
describe("web app", () => {
  let web: Started;
  let base: string;

  beforeAll(async () => {
    expect(existsSync(join(WEB_DIR, ".next", "BUILD_ID")), "run through `npm test`, which builds the web app").toBe(
      true,
    );
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const next = join(WEB_DIR, "node_modules/.bin/next");
    const bin = existsSync(next) ? next : join(WEB_DIR, "../../node_modules/.bin/next");
    web = startGroup(bin, ["start", "-H", "127.0.0.1", "-p", String(port)], { cwd: WEB_DIR, env: process.env });
    await waitUntil("next start", async () => (await fetch(`${base}/api/health`)).ok, 60_000);
  });
  afterAll(async () => {
    if (web?.child.pid && web.child.exitCode === null) {
      process.kill(-web.child.pid, "SIGTERM");
      await web.exited;
    }
  });

  it("answers /api/health", async () => {
    const res = await fetch(`${base}/api/health`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("application/json");
    expect(await res.json()).toMatchObject({ status: "ok", service: "web" });
  });

  it("serves a landing page that says what Kiln is, without third-party fonts", async () => {
    const res = await fetch(base);
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain("<title>Kiln — serverless inference for ONNX models</title>");
    expect(html).toContain("How it works");
    expect(html).not.toMatch(/fonts\.(googleapis|gstatic)\.com/);
  });

  it("answers 404 for unknown pages", async () => {
    expect((await fetch(`${base}/no-such-page`)).status).toBe(404);
  });
});
