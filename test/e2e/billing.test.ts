// Billing end to end in a real browser: the production web build (`next start`) talks to the Stripe
// double over HTTP with the real SDK, and the double delivers signed webhooks to the web app's route.
// A new organization goes Free → Pro (Checkout) → canceled (Customer Portal), and its usage reaches
// Stripe's meters exactly once. Screenshots land in test/e2e/artifacts/.
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createStripeClient, enqueueMeterEvents, sendDueMeterEvents } from "@kiln/billing";
import { StripeDouble, TEST_STRIPE_CONFIG } from "@kiln/billing/testing";
import { createPrismaClient, newId, type PrismaClient } from "@kiln/db";
import { createTestDatabase, seedDeployment, type TestDatabase } from "@kiln/db/testing";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, ROOT, type Started, startGroup, tempDir, WEB_DIR, waitUntil } from "../support.ts";

const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const ARTIFACTS = join(ROOT, "test/e2e/artifacts");

describe("billing in a browser against the Stripe double", () => {
  let database: TestDatabase;
  let prisma: PrismaClient;
  let data: ReturnType<typeof tempDir>;
  let double: StripeDouble;
  let web: Started;
  let browser: Browser;
  let page: Page;
  let base: string;
  let orgId: string;
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
    data = tempDir("kiln-e2e-billing-");
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    double = new StripeDouble({
      secretKey: TEST_STRIPE_CONFIG.STRIPE_SECRET_KEY,
      webhookSecret: TEST_STRIPE_CONFIG.STRIPE_WEBHOOK_SECRET,
      webhookUrl: `${base}/api/stripe/webhook`,
      priceAmounts: { price_pro_monthly: 4900, price_enterprise_monthly: 49900 },
    });
    const stripe = await double.start();
    const env = {
      ...process.env,
      NODE_ENV: "production" as const,
      LOG_LEVEL: "warn",
      DATABASE_URL: database.url,
      REDIS_KEY_PREFIX: `kiln-e2e-billing-${process.pid}:`,
      KILN_DATA_DIR: data.path,
      WEB_PORT: String(port),
      WEB_PUBLIC_URL: base,
      AUTH_SECRET: randomBytes(32).toString("hex"),
      // Production refuses to start without the secret that signs prediction webhooks.
      WEBHOOK_SIGNING_SECRET: randomBytes(32).toString("hex"),
      ...Object.fromEntries(Object.entries(TEST_STRIPE_CONFIG).map(([k, v]) => [k, String(v)])),
      STRIPE_API_HOST: stripe.host,
      STRIPE_API_PORT: String(stripe.port),
      STRIPE_API_PROTOCOL: stripe.protocol,
    };
    const next = join(ROOT, "node_modules/.bin/next");
    web = startGroup(next, ["start", "-H", "127.0.0.1", "-p", String(port)], { cwd: WEB_DIR, env });
    await waitUntil("next start", async () => (await fetch(`${base}/api/health`)).ok, 90_000);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-dev-shm-usage"] });
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, baseURL: base });
    page = await context.newPage();
    page.on("console", (message) => {
      if (message.type() === "error") consoleErrors.push(`${message.text()} (${page.url()})`);
    });
    page.on("pageerror", (error) => consoleErrors.push(`uncaught: ${error.message} (${page.url()})`));
  });

  afterAll(async () => {
    await browser?.close();
    if (web?.child.pid && web.child.exitCode === null) {
      process.kill(-web.child.pid, "SIGTERM");
      await web.exited;
    }
    if (web) writeFileSync(join(ARTIFACTS, "billing-web.log"), web.output());
    await double?.settled();
    await double?.stop();
    await prisma?.$disconnect();
    await database?.drop();
    data?.remove();
  });

  const currentPlan = () => page.getByTestId("current-plan").textContent();

  it("starts a new organization on Free", async () => {
    await page.goto("/sign-up");
    await page.getByLabel("Name").fill("Grace Hopper");
    await page.getByLabel("Email").fill("grace@example.com");
    await page.getByLabel("Password").fill("correct horse battery 42");
    await page.getByRole("button", { name: "Create account" }).click();
    await page.getByLabel("Organization name").fill("Hopper Labs");
    await page.getByRole("button", { name: "Create organization" }).click();
    await page.getByRole("heading", { name: "Models", exact: true }).waitFor();
    orgId = await page.getByLabel("Organization", { exact: true }).inputValue();

    await page.getByRole("navigation", { name: "Dashboard" }).getByRole("link", { name: "Billing" }).click();
    await page.getByRole("heading", { name: "Billing", exact: true }).waitFor();
    await expect.poll(currentPlan).toBe("Free");
    await page.getByText("No invoices yet").waitFor();
    await shot("billing-01-free");
  });

  it("upgrades to Pro through Checkout", async () => {
    await page.getByRole("button", { name: "Upgrade to Pro" }).click();
    await page.getByRole("heading", { name: /Stripe Checkout/ }).waitFor();
    await page.getByRole("button", { name: "Subscribe" }).click();
    await page.waitForURL(/\/billing\?plan=pro/);
    await expect.poll(currentPlan).toBe("Pro");
    await expect.poll(() => page.getByTestId("projected-invoice").textContent()).toBe("$49.00");
    await page.getByRole("table", { name: "Invoices" }).getByText("$49.00").waitFor();
    await shot("billing-02-pro");
  });

  it("reports the organization's usage to Stripe's meters exactly once", async () => {
    const { deploymentId } = await seedDeployment(prisma, { orgId, name: "prod" });
    const hour = new Date(Math.floor(Date.now() / 3_600_000) * 3_600_000 - 3_600_000);
    await prisma.usageRollup.create({
      data: { id: newId("use"), orgId, deploymentId, hour, requests: 321n, gpuMilliseconds: 12_500n },
    });
    const stripe = new URL(double.url);
    const deps = {
      prisma,
      stripe: createStripeClient({
        STRIPE_SECRET_KEY: TEST_STRIPE_CONFIG.STRIPE_SECRET_KEY,
        STRIPE_API_HOST: stripe.hostname,
        STRIPE_API_PORT: Number(stripe.port),
        STRIPE_API_PROTOCOL: "http",
      }),
      config: TEST_STRIPE_CONFIG,
    };
    for (let i = 0; i < 3; i++) {
      await enqueueMeterEvents(deps);
      await sendDueMeterEvents(deps);
    }
    const customer = (await prisma.subscription.findUniqueOrThrow({ where: { orgId } })).stripeCustomerId;
    expect(double.meteredTotal(customer, "kiln_requests")).toBe(321);
    expect(double.meteredTotal(customer, "kiln_compute_seconds")).toBe(12.5);
    expect(double.meterEvents.size).toBe(2);
  });

  it("cancels back to Free through the Customer Portal", async () => {
    await page.getByRole("button", { name: "Downgrade to Free" }).click();
    await page.getByRole("heading", { name: /Customer Portal/ }).waitFor();
    await page.getByRole("button", { name: "Cancel subscription" }).click();
    await page.waitForURL(/\/billing/);
    await page.reload();
    await expect.poll(currentPlan).toBe("Free");
    await shot("billing-03-canceled");
    expect(consoleErrors).toEqual([]);
  });
});
