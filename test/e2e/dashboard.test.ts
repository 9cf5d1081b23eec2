// The dashboard end to end in a real browser: playwright-core drives Debian's chromium against the
// production web build (`next start`), a real build worker and real Postgres and Redis. The journey
// is the one a new customer takes: sign up, create an organization, upload an ONNX model, build it
// on CPU, read the report, create an API key and revoke it. Screenshots land in test/e2e/artifacts/.
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { npzBytes } from "@kiln/builds/testing";
import { createTestDatabase, type TestDatabase } from "@kiln/db/testing";
import { generateModelBytes } from "@kiln/model-gen";
import { Redis } from "ioredis";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, ROOT, type Started, startGroup, tempDir, WEB_DIR, waitUntil } from "../support.ts";

const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const ARTIFACTS = join(ROOT, "test/e2e/artifacts");
const PASSWORD = "correct horse battery 42";
const REDIS_KEY_PREFIX = `kiln-e2e-${process.pid}:`;

describe("dashboard in a browser", () => {
  let database: TestDatabase;
  let data: ReturnType<typeof tempDir>;
  let web: Started;
  let worker: Started;
  let browser: Browser;
  let page: Page;
  let base: string;
  // Everything the page logs as an error, and every uncaught exception: the journey must end with none.
  const consoleErrors: string[] = [];

  const shot = async (name: string) => {
    await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
  };

  beforeAll(async () => {
    expect(existsSync(CHROMIUM), `chromium not found at ${CHROMIUM}: apt-get install -y chromium`).toBe(true);
    expect(existsSync(join(WEB_DIR, ".next", "BUILD_ID")), "run through `npm test`, which builds the web app").toBe(
      true,
    );
    mkdirSync(ARTIFACTS, { recursive: true });
    database = await createTestDatabase();
    data = tempDir("kiln-e2e-");
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const env = {
      ...process.env,
      NODE_ENV: "production" as const,
      LOG_LEVEL: "warn",
      DATABASE_URL: database.url,
      REDIS_KEY_PREFIX,
      KILN_DATA_DIR: data.path,
      WEB_PORT: String(port),
      WEB_PUBLIC_URL: base,
      // `next start` runs in production mode, which refuses to start without real secrets.
      AUTH_SECRET: randomBytes(32).toString("hex"),
      WEBHOOK_SIGNING_SECRET: randomBytes(32).toString("hex"),
    };
    const next = join(ROOT, "node_modules/.bin/next");
    web = startGroup(next, ["start", "-H", "127.0.0.1", "-p", String(port)], { cwd: WEB_DIR, env });
    worker = startGroup(process.execPath, ["--import", "tsx", "apps/worker/src/main.ts"], {
      cwd: ROOT,
      env: { ...env, WORKER_TARGET: "cpu", WORKER_SLOT: "e2e-cpu-0", WORKER_HEARTBEAT_MS: "1000" },
    });
    await waitUntil("next start", async () => (await fetch(`${base}/api/health`)).ok, 90_000);

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
    for (const started of [web, worker]) {
      if (started?.child.pid && started.child.exitCode === null) {
        process.kill(-started.child.pid, "SIGTERM");
        await started.exited;
      }
    }
    if (web) writeFileSync(join(ARTIFACTS, "web.log"), web.output());
    if (worker) writeFileSync(join(ARTIFACTS, "worker.log"), worker.output());
    await database?.drop();
    data?.remove();
    await deleteRedisKeys(REDIS_KEY_PREFIX);
  });

  it("signs up with inline password rules, then creates an organization", async () => {
    await page.goto("/models");
    // Signed-out visitors are sent to sign in.
    await page.waitForURL(/\/sign-in/);
    await page.getByRole("link", { name: "Create an account" }).click();
    await page.waitForURL(/\/sign-up/);

    await page.getByLabel("Name").fill("Ada Lovelace");
    await page.getByLabel("Email").fill("ada@example.com");
    await page.getByLabel("Password").fill("short");
    await page.getByLabel("Password").blur();
    const passwordError = page.getByText(/Use at least 12 characters/);
    await expect.poll(() => passwordError.isVisible()).toBe(true);
    await expect.poll(() => page.getByLabel("Password").getAttribute("aria-invalid")).toBe("true");
    await shot("01-sign-up-inline-error");

    // Submitting with an error moves focus to the field that needs fixing.
    await page.getByRole("button", { name: "Create account" }).click();
    await expect.poll(() => page.evaluate("document.activeElement?.getAttribute('name')")).toBe("password");

    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Create account" }).click();
    await page.getByRole("heading", { name: "Welcome to Kiln", exact: true }).waitFor();
    await shot("02-first-run-create-org");

    await page.getByLabel("Organization name").fill("Acme Vision");
    await page.getByRole("button", { name: "Create organization" }).click();
    await page.getByRole("heading", { name: "Models", exact: true }).waitFor();
    await expect.poll(() => page.getByLabel("Organization", { exact: true }).inputValue()).toMatch(/^org_/);
  });

  it("uploads a generated ONNX model with a progress bar and shows its signature", async () => {
    // A small ResNet-18: real convolutions, BatchNorms to fold and ReLUs to fuse, a symbolic batch dim.
    const model = generateModelBytes("resnet18", { width: 8, imageSize: 32, classes: 10 });
    const file = join(data.path, "resnet18-tiny.onnx");
    writeFileSync(file, model);

    // A damaged file is refused with the reader's reason, and nothing is created.
    const truncated = join(data.path, "damaged.onnx");
    writeFileSync(truncated, model.subarray(0, 4096));
    await page.getByLabel("ONNX file").setInputFiles(truncated);
    await expect.poll(() => page.getByLabel("Model name").inputValue()).toBe("damaged");
    await page.getByRole("button", { name: "Upload model" }).click();
    await page.getByRole("alert").filter({ hasText: "not a valid ONNX model" }).waitFor();
    await shot("03-upload-rejected");
    expect(await page.getByRole("table", { name: "Models" }).count()).toBe(0);
    // The browser logs every refused request; this one was provoked, and it is the only error so far.
    expect(consoleErrors.splice(0)).toEqual([expect.stringMatching(/status of 422 .*\/models\)$/)]);

    await page.getByLabel("ONNX file").setInputFiles(file);
    await page.getByLabel("Model name").fill("resnet18-tiny");
    // Slow the browser's uploads down so the progress bar has time to be seen (and photographed).
    const cdp = await page.context().newCDPSession(page);
    await cdp.send("Network.emulateNetworkConditions", {
      offline: false,
      latency: 0,
      downloadThroughput: -1,
      uploadThroughput: 200_000,
    });
    await page.getByRole("button", { name: "Upload model" }).click();
    const progress = page.getByRole("progressbar", { name: /Uploading resnet18-tiny\.onnx/ });
    await expect
      .poll(async () => Number(await progress.getAttribute("aria-valuenow")), { timeout: 30_000 })
      .toBeGreaterThan(0);
    await shot("04-upload-progress");
    await page.waitForURL(/\/models\/mdl_/);
    await cdp.send("Network.emulateNetworkConditions", {
      offline: false,
      latency: 0,
      downloadThroughput: -1,
      uploadThroughput: -1,
    });
    await page.getByRole("heading", { name: "resnet18-tiny", exact: true }).waitFor();

    // The upload route streams: 300 MiB sent with no declared length, produced a chunk at a time,
    // is cut off at the Free plan's 256 MiB without the web server ever holding it (its peak
    // resident memory grows by far less than the upload).
    const cookie = (await page.context().cookies()).map((c) => `${c.name}=${c.value}`).join("; ");
    const before = peakResidentBytes(web.child.pid ?? 0);
    let sent = 0;
    const chunk = new Uint8Array(1 << 20);
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= 300) return controller.close();
        sent++;
        controller.enqueue(chunk);
      },
    });
    const huge = await fetch(`${base}/api/models/upload?name=huge`, {
      method: "POST",
      headers: { cookie, "content-type": "application/octet-stream" },
      body,
      duplex: "half",
    } as RequestInit).catch((error: Error) => error);
    const growth = peakResidentBytes(web.child.pid ?? 0) - before;
    const answer = huge instanceof Error ? `connection closed: ${huge.message}` : `HTTP ${huge.status}`;
    console.log(`web peak RSS grew ${(growth / 2 ** 20).toFixed(1)} MiB during a ${sent} MiB upload (${answer})`);
    if (!(huge instanceof Error)) expect(huge.status).toBe(413);
    expect(growth).toBeLessThan(128 * 2 ** 20);
    await page.getByText("Every operator in this model is supported").waitFor();
    // The symbolic batch dim is called out, and the signature lists the model's operators.
    expect(await page.locator(".shape__dynamic", { hasText: "batch" }).count()).toBeGreaterThan(0);
    for (const op of ["Conv", "BatchNormalization", "Relu", "Gemm"]) {
      await page.getByRole("list", { name: "Operators used by the model" }).getByText(op, { exact: true }).waitFor();
    }
    await shot("05-model-detail");
  });

  it("builds the model on CPU with live progress and shows the report", async () => {
    await page.getByRole("link", { name: "Build this version" }).click();
    await page.waitForURL(/\/builds\/new/);
    // The profile is prefilled from the dynamic batch dim: min 1, opt 1, max 8.
    await expect.poll(() => page.getByLabel("input dimension 0 max").inputValue()).toBe("8");
    await page.getByLabel("input dimension 0 opt").fill("2");
    await shot("06-build-form");
    await page.getByRole("button", { name: "Start build" }).click();
    await page.waitForURL(/\/builds\/bld_/);
    await page.getByText("succeeded", { exact: true }).waitFor({ timeout: 240_000 });
    await page.getByRole("heading", { name: "Time per layer", exact: true }).waitFor();
    await page.getByRole("img", { name: /Time per layer/ }).waitFor();
    await page.getByRole("list", { name: "Optimizations applied" }).waitFor();
    expect(await page.locator(".chart svg rect").count()).toBeGreaterThan(3);
    // The engine can be downloaded.
    const download = page.getByRole("link", { name: /Download engine/ });
    const href = await download.getAttribute("href");
    const engine = await page.request.get(href ?? "");
    expect(engine.status()).toBe(200);
    expect((await engine.body()).byteLength).toBeGreaterThan(1000);
    await shot("07-build-report");

    // The builds list filters by status with keyboard-operable tabs (arrow keys move and select).
    await page.getByRole("navigation", { name: "Dashboard" }).getByRole("link", { name: "Builds" }).click();
    await page.getByRole("tab", { name: /^All \(1\)/ }).focus();
    await page.keyboard.press("ArrowRight");
    await expect
      .poll(() => page.getByRole("tab", { name: /^In progress \(0\)/ }).getAttribute("aria-selected"))
      .toBe("true");
    await page.getByText("No in progress builds").waitFor();
    await page.keyboard.press("ArrowRight");
    await page.getByRole("tabpanel").getByRole("link", { name: /^bld_/ }).waitFor();
    await shot("07b-builds-list");
  });

  it("builds INT8 only on a GPU target, with a calibration set checked on upload", async () => {
    await page.getByRole("navigation", { name: "Dashboard" }).getByRole("link", { name: "Models" }).click();
    await page.getByRole("link", { name: "resnet18-tiny" }).click();
    await page.getByRole("link", { name: "Build this version" }).click();
    await page.waitForURL(/\/builds\/new/);
    // Only CPU workers are online: INT8 says why it cannot be picked.
    const int8 = page.getByLabel("Precision").locator("option[value=int8]");
    expect(await int8.textContent()).toBe("INT8 — needs a GPU target");
    expect(await int8.isDisabled()).toBe(true);
    await page.getByText("CPU targets build FP32 engines. INT8 (and FP16) need a GPU target.").waitFor();

    // A GPU worker registers (what its heartbeat writes); the form offers its class and INT8.
    const redis = new Redis(process.env.REDIS_URL ?? "");
    await redis.set(
      `${REDIS_KEY_PREFIX}worker:e2e-gpu-0`,
      JSON.stringify({ id: "e2e-gpu-0", target: "cuda-sm90", slot: "e2e-gpu-0" }),
      "PX",
      600_000,
    );
    redis.disconnect();
    await page.reload();
    await page.getByLabel("Target").selectOption("cuda-sm90");
    await page.getByLabel("Precision").selectOption("int8");
    await page.getByRole("heading", { name: "INT8 calibration" }).waitFor();
    await page
      .getByRole("list", { name: "Arrays the calibration set needs" })
      .getByText("float32 (N, 3, 32, 32)")
      .waitFor();
    // Submitting without a set points at what is missing.
    await page.getByRole("button", { name: "Start build" }).click();
    await page.getByText("Upload a calibration set (.npz) or choose one.").waitFor();

    // A set whose arrays do not fit the model is refused inline, with what to fix.
    const wrong = join(data.path, "wrong.npz");
    writeFileSync(
      wrong,
      npzBytes({ input: { dtype: "float32", shape: [4, 3, 16, 16], data: new Float32Array(4 * 3 * 256) } }),
    );
    await page.getByLabel("Calibration set (.npz)").setInputFiles(wrong);
    await page.getByText(/input "input" is \(batch, 3, 32, 32\): dim 2 must be 32, dim 3 must be 32\./).waitFor();
    await shot("07c-calibration-rejected");
    expect(consoleErrors.splice(0)).toEqual([expect.stringMatching(/status of 422 .*\/builds\/new/)]);

    // A fitting set, uploaded with a progress bar (throttled so it shows).
    const samples = 32;
    const good = join(data.path, "calib.npz");
    writeFileSync(
      good,
      npzBytes({
        input: {
          dtype: "float32",
          shape: [samples, 3, 32, 32],
          data: Float32Array.from({ length: samples * 3 * 32 * 32 }, (_, i) => Math.sin(i)),
        },
      }),
    );
    const cdp = await page.context().newCDPSession(page);
    await cdp.send("Network.emulateNetworkConditions", {
      offline: false,
      latency: 0,
      downloadThroughput: -1,
      uploadThroughput: 150_000,
    });
    await page.getByLabel("Calibration set (.npz)").setInputFiles(good);
    const progress = page.getByRole("progressbar", { name: /Uploading calib\.npz/ });
    await expect
      .poll(async () => Number(await progress.getAttribute("aria-valuenow")), { timeout: 30_000 })
      .toBeGreaterThan(0);
    // The build cannot start while its calibration set is still on its way.
    expect(await page.getByRole("button", { name: "Start build" }).isDisabled()).toBe(true);
    await shot("07d-calibration-upload-progress");
    await expect
      .poll(() => page.getByLabel("Calibration set", { exact: true }).inputValue(), { timeout: 60_000 })
      .toMatch(/^cal_/);
    await cdp.send("Network.emulateNetworkConditions", {
      offline: false,
      latency: 0,
      downloadThroughput: -1,
      uploadThroughput: -1,
    });
    await page.getByText("Arrays: input (32, 3, 32, 32)").waitFor();
    await page.getByLabel("Calibration method").selectOption("percentile");
    await page.getByLabel("Percentile").fill("120");
    await page.getByRole("button", { name: "Start build" }).click();
    await page.getByText("The percentile must be between 50 and 100.").waitFor();
    await page.getByLabel("Percentile").fill("99.9");
    await shot("07e-int8-build-form");
    // On a phone the cards stack and nothing overflows sideways.
    await page.setViewportSize({ width: 390, height: 800 });
    expect(await page.evaluate("document.documentElement.scrollWidth")).toBeLessThanOrEqual(390);
    await shot("07e-int8-build-form-phone");
    await page.setViewportSize({ width: 1280, height: 860 });
    await page.getByRole("button", { name: "Start build" }).click();

    // The build waits for the GPU worker; its details name the calibration set and method.
    await page.waitForURL(/\/builds\/bld_/);
    await page.getByText("Waiting for a worker").waitFor();
    await page.getByText(`calib.npz · ${samples} samples · percentile 99.9`).waitFor();
    await shot("07f-int8-build-queued");
    await page.getByRole("button", { name: "Cancel build" }).click();
    await page
      .getByRole("dialog", { name: "Cancel this build?" })
      .getByRole("button", { name: "Cancel build" })
      .click();
    await page.getByText("canceled", { exact: true }).first().waitFor();
  });

  it("creates an API key shown exactly once, then revokes it after confirming", async () => {
    await page.getByRole("navigation", { name: "Dashboard" }).getByRole("link", { name: "API keys" }).click();
    await page.getByRole("heading", { name: "API keys", exact: true }).waitFor();
    await page.getByText("No API keys yet").waitFor();
    await page.getByRole("button", { name: "Create API key" }).click();
    const dialog = page.getByRole("dialog", { name: "Create API key" });
    // Inline validation: a key needs a name.
    await dialog.getByRole("button", { name: "Create key" }).click();
    await dialog.getByText("Name the key.").waitFor();
    await shot("08-create-key-dialog");
    await dialog.getByLabel("Name").fill("checkout-service");
    await dialog.getByRole("button", { name: "Create key" }).click();

    const secret = await page.getByLabel("API key", { exact: true }).inputValue();
    expect(secret).toMatch(/^kiln_live_/);
    await page.getByRole("cell", { name: "checkout-service", exact: true }).waitFor();
    await shot("09-api-key-shown-once");

    await page.getByRole("button", { name: "I have stored the key" }).click();
    // Gone for good: the page never shows the whole key again.
    expect(await page.content()).not.toContain(secret);

    // The confirmation is a real modal: Escape backs out and the key stays active.
    await page.getByRole("button", { name: "Revoke checkout-service" }).click();
    const confirm = page.getByRole("dialog", { name: /Revoke/ });
    await confirm.waitFor();
    await page.keyboard.press("Escape");
    await confirm.waitFor({ state: "hidden" });
    await page.getByRole("cell", { name: "active" }).waitFor();
    await page.getByRole("button", { name: "Revoke checkout-service" }).click();
    await confirm.getByRole("button", { name: "Revoke key" }).click();
    await page.getByRole("cell", { name: "revoked" }).waitFor();
    await shot("10-api-key-revoked");
  });

  it("invites a member: the link is shown, the invitation is pending", async () => {
    await page.getByRole("navigation", { name: "Dashboard" }).getByRole("link", { name: "Members" }).click();
    await page.getByRole("heading", { name: "Members", exact: true }).waitFor();
    await page.getByRole("cell", { name: /ada@example\.com/ }).waitFor();
    await page.getByLabel("Email").fill("grace@example.com");
    await page.getByLabel("Role", { exact: true }).selectOption("admin");
    await page.getByRole("button", { name: "Create invite link" }).click();
    const link = await page.getByLabel("Invite link").inputValue();
    expect(link).toMatch(new RegExp(`^${base}/invite/inv_`));
    await page.getByRole("button", { name: "Cancel the invitation of grace@example.com" }).waitFor();
    await shot("11-members-invite");
  });

  it("records the journey in the audit log, signs out and back in, and logged no console errors", async () => {
    await page.getByRole("navigation", { name: "Dashboard" }).getByRole("link", { name: "Audit log" }).click();
    await page.getByRole("heading", { name: "Audit log", exact: true }).waitFor();
    for (const action of [
      "orgs.create",
      "models.upload",
      "builds.create",
      "calibration.upload",
      "builds.cancel",
      "apiKeys.create",
      "apiKeys.revoke",
      "orgs.invite",
    ]) {
      await page.getByText(action, { exact: true }).first().waitFor();
    }
    await shot("12-audit-log");

    // Signing out ends the session; signing in again (a session with no organization chosen yet)
    // lands in the user's organization with everything still there.
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.waitForURL(/\/sign-in/);
    await page.goto("/models");
    await page.waitForURL(/\/sign-in/);
    await page.getByLabel("Email").fill("ada@example.com");
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("link", { name: "resnet18-tiny" }).waitFor();
    await expect.poll(() => page.getByLabel("Organization", { exact: true }).inputValue()).toMatch(/^org_/);

    // The layout holds up on a phone: the side bar becomes a menu.
    await page.setViewportSize({ width: 390, height: 800 });
    await page.getByRole("button", { name: "Menu" }).click();
    await page.getByRole("navigation", { name: "Dashboard" }).getByRole("link", { name: "Models" }).waitFor();
    await shot("13-mobile-menu");
    await page.getByRole("button", { name: "Menu" }).click();
    await page.getByRole("navigation", { name: "Dashboard" }).waitFor({ state: "hidden" });
    await shot("14-mobile-page");

    expect(consoleErrors).toEqual([]);
  });
});

/** The highest resident memory (VmHWM) of any process in the group led by `pid`, in bytes. */
function peakResidentBytes(pid: number): number {
  let peak = 0;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // Field 5 (after the parenthesised command name) is the process group id.
      const pgid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]);
      if (pgid !== pid) continue;
      const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${entry}/status`, "utf8"));
      if (match) peak = Math.max(peak, Number(match[1]) * 1024);
    } catch {
      // The process ended meanwhile.
    }
  }
  return peak;
}

/** Removes what the stack wrote to the shared Redis under this run's prefix (queues, sessions, registry). */
async function deleteRedisKeys(prefix: string): Promise<void> {
  const url = process.env.REDIS_URL;
  if (!url) return;
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    for (let cursor = "0"; ; ) {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 500);
      if (keys.length > 0) await redis.del(...keys);
      cursor = next;
      if (cursor === "0") break;
    }
  } finally {
    redis.disconnect();
  }
}
