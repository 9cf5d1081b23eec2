// Serving in a real browser: the production web build, a gateway and a worker process, real
// Postgres and Redis. A signed-in user deploys a build from the Deployments page, calls it from the
// Playground with an API key (form generated from the signature), and sees the request on Usage.
// Screenshots land in test/e2e/artifacts/.
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createApiKey } from "@kiln/api-keys";
import { createPrismaClient, newId, type PrismaClient } from "@kiln/db";
import { createTestDatabase, seedBuild, type TestDatabase } from "@kiln/db/testing";
import { build } from "@kiln/engine";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { denseModel, denseProfile } from "../../packages/engine/src/testing/models.ts";
import { freePort, ROOT, type Started, startGroup, tempDir, WEB_DIR, waitUntil } from "../support.ts";

const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const ARTIFACTS = join(ROOT, "test/e2e/artifacts");
const PASSWORD = "correct horse battery 42";

describe("serving in a browser", () => {
  let database: TestDatabase;
  let prisma: PrismaClient;
  let data: ReturnType<typeof tempDir>;
  const processes: Started[] = [];
  let browser: Browser;
  let page: Page;
  let base: string;
  let gatewayUrl: string;
  const consoleErrors: string[] = [];
  const shot = (name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });

  beforeAll(async () => {
    expect(existsSync(CHROMIUM), `chromium not found at ${CHROMIUM}`).toBe(true);
    expect(existsSync(join(WEB_DIR, ".next", "BUILD_ID")), "run through `npm test`, which builds the web app").toBe(
      true,
    );
    mkdirSync(ARTIFACTS, { recursive: true });
    database = await createTestDatabase();
    prisma = createPrismaClient(database.url, { maxConnections: 2 });
    data = tempDir("kiln-e2e-serving-");
    const [webPort, gatewayPort] = [await freePort(), await freePort()];
    base = `http://127.0.0.1:${webPort}`;
    gatewayUrl = `http://127.0.0.1:${gatewayPort}`;
    const env = {
      ...process.env,
      NODE_ENV: "production" as const,
      LOG_LEVEL: "warn",
      DATABASE_URL: database.url,
      REDIS_KEY_PREFIX: `kiln-e2e-serving-${process.pid}:`,
      ARTIFACT_DIR: data.path,
      WEB_PORT: String(webPort),
      GATEWAY_PORT: String(gatewayPort),
      WEB_PUBLIC_URL: base,
      AUTH_SECRET: randomBytes(32).toString("hex"),
      WEBHOOK_SIGNING_SECRET: randomBytes(32).toString("hex"),
    };
    processes.push(
      startGroup(join(ROOT, "node_modules/.bin/next"), ["start", "-H", "127.0.0.1", "-p", String(webPort)], {
        cwd: WEB_DIR,
        env,
      }),
    );
    processes.push(startGroup(process.execPath, ["--import", "tsx", "apps/gateway/src/main.ts"], { cwd: ROOT, env }));
    processes.push(
      startGroup(process.execPath, ["--import", "tsx", "apps/worker/src/main.ts"], {
        cwd: ROOT,
        env: { ...env, WORKER_SLOT: "e2e-serving-0", WORKER_HEARTBEAT_MS: "1000" },
      }),
    );
    await waitUntil(
      "next start",
      async () => (await fetch(`${base}/api/health`).catch(() => null))?.ok === true,
      90_000,
    );
    await waitUntil(
      "gateway",
      async () => (await fetch(`${gatewayUrl}/v2/health/live`).catch(() => null))?.ok === true,
      60_000,
    );

    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-dev-shm-usage"] });
    const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, baseURL: base });
    page = await context.newPage();
    page.on("console", (message) => {
      if (message.type() === "error") consoleErrors.push(`${message.text()} (${page.url()})`);
    });
    page.on("pageerror", (error) => consoleErrors.push(`uncaught: ${error.message} (${page.url()})`));
  });

  afterAll(async () => {
    await browser?.close();
    for (const started of processes) {
      if (started.child.pid && started.child.exitCode === null) {
        process.kill(-started.child.pid, "SIGTERM");
        await started.exited;
      }
    }
    writeFileSync(join(ARTIFACTS, "serving-processes.log"), processes.map((p) => p.output()).join("\n---\n"));
    await prisma?.$disconnect();
    await database?.drop();
    data?.remove();
  });

  it("deploys a build, calls it from the playground and shows the usage", async () => {
    await page.goto("/sign-up");
    await page.getByLabel("Name").fill("Grace Hopper");
    await page.getByLabel("Email").fill("grace@example.com");
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Create account" }).click();
    await page.getByLabel("Organization name").fill("Serving Co");
    await page.getByRole("button", { name: "Create organization" }).click();
    await page.getByRole("heading", { name: "Models", exact: true }).waitFor();
    const orgId = await page.getByLabel("Organization", { exact: true }).inputValue();

    // A finished build of the dense model, written where the worker reads engines (the builds
    // journey itself is covered by dashboard.test.ts).
    const { engine } = await build(denseModel(), { profiles: [denseProfile(1, 4, 64)] });
    const engineKey = `engines/${newId("bld")}.kiln`;
    mkdirSync(join(data.path, "engines"), { recursive: true });
    writeFileSync(join(data.path, engineKey), engine);
    await seedBuild(prisma, orgId, {
      modelName: "dense",
      version: {
        filename: "dense.onnx",
        signature: {
          inputs: [{ name: "x", dtype: "float32", shape: ["batch", 4] }],
          outputs: [{ name: "y", dtype: "float32", shape: ["batch", 3] }],
        },
      },
      build: {
        profiles: [denseProfile(1, 4, 64)],
        status: "succeeded",
        cacheKey: "e2e",
        builderVersion: "e2e",
        engineStorageKey: engineKey,
        deviceMemoryBytes: 0n,
      },
    });
    const { key } = await createApiKey({ prisma }, { orgId, name: "playground", scopes: ["inference"] });

    await page.goto("/deployments");
    await page.getByLabel("Name").fill("dense-prod");
    await page.getByRole("button", { name: "Deploy" }).click();
    const row = page.getByRole("row", { name: /dense-prod/ });
    await row.waitFor();
    await expect.poll(() => row.textContent()).toMatch(/cold/i);
    await shot("serving-01-deployments");

    await page.goto("/playground");
    await page.getByLabel("API key").fill(key);
    // Defaults to this host's :8080 (npm start); the test's gateway listens elsewhere.
    await expect.poll(() => page.getByLabel("Gateway URL").inputValue()).toMatch(/^http:\/\/127\.0\.0\.1:8080$/);
    await page.getByLabel("Gateway URL").fill(gatewayUrl);
    await page.getByLabel("Data (JSON, row-major)").fill("[1, 2, 3, 4]");
    await page.getByRole("button", { name: "Run" }).click();
    const response = page.getByRole("heading", { name: /Response 200/ });
    await response.waitFor({ timeout: 60_000 });
    await expect.poll(() => page.locator("pre").textContent()).toContain('"name": "y"');
    await shot("serving-02-playground");

    await page.goto("/deployments");
    await expect
      .poll(() => page.getByRole("row", { name: /dense-prod/ }).textContent(), { timeout: 20_000 })
      .toMatch(/ready/i);

    await page.goto("/usage");
    await expect
      .poll(() => page.getByText(/Requests: 1 of 10,000 requests/).isVisible(), { timeout: 20_000 })
      .toBe(true);
    // The worker's aggregator folds the usage event into the hourly rollup. The report is fetched
    // after the page hydrates, so each reload waits for the table rather than looking at once.
    const rollupCell = page.getByRole("cell", { name: "dense-prod" });
    await expect
      .poll(
        async () => {
          await page.reload();
          return rollupCell.waitFor({ timeout: 5_000 }).then(
            () => true,
            () => false,
          );
        },
        { timeout: 60_000, interval: 1_000 },
      )
      .toBe(true);
    await shot("serving-03-usage");
    expect(consoleErrors).toEqual([]);
  });
});
