// `npm start`: web, gateway and worker together, with Postgres and Redis from DATABASE_URL and
// REDIS_URL or, when those are unset, an embedded Postgres and a private Redis under .kiln/.
// Ctrl-C stops everything this script started, in order, and leaves no process behind.
import { resolve } from "node:path";
import { ConfigError, loadConfig } from "@kiln/config";
import { migrate } from "@kiln/db";
import { localAuthSecret, localSecret } from "./lib/auth-secret.ts";
import { ROOT, WEB_DIR } from "./lib/paths.ts";
import { type Managed, spawnManaged, stopManaged, waitUntil } from "./lib/processes.ts";
import { provideServices, type Services, stopStartedServices } from "./lib/services.ts";
import { ensureWebBuild, nextBin } from "./lib/web-build.ts";

const log = (line: string) => console.log(`[kiln] ${line}`);
const dataDir = resolve(ROOT, process.env.KILN_DATA_DIR || ".kiln");

let services: Services | undefined;
const apps: Managed[] = [];
let stopping: Promise<void> | undefined;

function shutdown(reason: string, exitCode: number): Promise<void> {
  stopping ??= (async () => {
    log(`stopping (${reason})…`);
    // Apps first, so nothing is left talking to a database that is going away.
    await Promise.all(apps.map((app) => stopManaged(app)));
    await stopStartedServices();
    log("stopped");
    process.exit(exitCode);
  })();
  return stopping;
}

for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(signal, () => {
    if (stopping) {
      log("already stopping; waiting for processes to exit");
      return;
    }
    void shutdown(signal, 0);
  });
}

try {
  services = await provideServices({ dataDir, log });
  const env = {
    ...process.env,
    DATABASE_URL: services.databaseUrl,
    REDIS_URL: services.redisUrl,
    KILN_DATA_DIR: dataDir,
    NEXT_TELEMETRY_DISABLED: "1",
    AUTH_SECRET: process.env.AUTH_SECRET || localAuthSecret(dataDir),
    WEBHOOK_SIGNING_SECRET: process.env.WEBHOOK_SIGNING_SECRET || localSecret(dataDir, "webhook-signing-secret"),
  };
  // Validate once here too, so a bad setting is one clear message rather than three crashing apps.
  const config = loadConfig(env, ROOT);

  const { applied } = await migrate(services.databaseUrl);
  log(applied.length ? `applied migrations: ${applied.join(", ")}` : "database schema is up to date");
  await ensureWebBuild(log);
  if (stopping) await stopping;

  const tsNode = (script: string) => ["--import", "tsx", resolve(ROOT, script)];
  const stdio = ["ignore", "inherit", "inherit"] as const;
  apps.push(
    spawnManaged("web", process.execPath, [nextBin(), "start", "-H", config.HOST, "-p", String(config.WEB_PORT)], {
      cwd: WEB_DIR,
      env,
      stdio: [...stdio],
    }),
    spawnManaged("gateway", process.execPath, tsNode("apps/gateway/src/main.ts"), {
      cwd: ROOT,
      env,
      stdio: [...stdio],
    }),
    spawnManaged("worker", process.execPath, tsNode("apps/worker/src/main.ts"), { cwd: ROOT, env, stdio: [...stdio] }),
  );
  for (const app of apps) {
    void app.exited.then((code) => {
      if (!stopping) void shutdown(`${app.name} exited with code ${code}`, 1);
    });
  }

  const webUrl = `http://${config.HOST}:${config.WEB_PORT}`;
  const gatewayUrl = `http://${config.HOST}:${config.GATEWAY_PORT}`;
  const ok = async (url: string) => (await fetch(url)).ok;
  await Promise.all([
    waitUntil("the web app", () => ok(`${webUrl}/api/health`), 60_000),
    waitUntil("the gateway to be ready", () => ok(`${gatewayUrl}/v2/health/ready`), 60_000),
  ]);
  log("Kiln is running:");
  for (const line of [
    `web       ${webUrl}`,
    `gateway   ${gatewayUrl}  (ready: ${gatewayUrl}/v2/health/ready)`,
    `worker    target ${config.WORKER_TARGET}, slot ${config.WORKER_SLOT}`,
    ...services.describe,
  ]) {
    log(`  ${line}`);
  }
  log("press Ctrl-C to stop");
} catch (error) {
  if (!stopping) {
    const message = error instanceof ConfigError ? error.message : (error as Error).message;
    console.error(`[kiln] start failed: ${message}`);
    await shutdown("start failed", 1);
  }
}
