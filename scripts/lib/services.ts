import { existsSync, mkdirSync } from "node:fs";
import { delimiter, join, resolve } from "node:path";
import { Redis } from "ioredis";
import pg from "pg";
import { ROOT } from "./paths.ts";
import { freePort, type Managed, spawnManaged, stopManaged, waitUntil } from "./processes.ts";

export type Services = {
  databaseUrl: string;
  redisUrl: string;
  /** Human-readable lines describing where each service came from. */
  describe: string[];
  /** Stops what was started here; services given through the environment are left alone. */
  stop: () => Promise<void>;
};

type Log = (line: string) => void;

/**
 * Postgres and Redis for the start and test scripts: the ones named by DATABASE_URL and REDIS_URL
 * when set, otherwise an embedded Postgres and a private redis-server under `dataDir`.
 */
export async function provideServices(options: {
  dataDir: string;
  log: Log;
  fast?: boolean;
  database?: string;
}): Promise<Services> {
  const describe: string[] = [];
  const stop = stopStartedServices;
  try {
    let redisUrl = process.env.REDIS_URL || "";
    if (redisUrl) describe.push(`redis     ${redisUrl} (from REDIS_URL)`);
    else {
      const redis = await startPrivateRedis(join(options.dataDir, "redis"), options.log);
      started.push(redis.managed);
      redisUrl = redis.url;
      describe.push(`redis     ${redisUrl} (private, started by Kiln)`);
    }

    let databaseUrl = process.env.DATABASE_URL || "";
    if (databaseUrl) describe.push(`postgres  ${redact(databaseUrl)} (from DATABASE_URL)`);
    else {
      const dir = join(options.dataDir, "postgres");
      const postgres = await startEmbeddedPostgres(dir, options.log, options.fast ?? false);
      started.push(postgres.managed);
      databaseUrl = await ensureDatabase(postgres.url, options.database ?? "kiln");
      describe.push(`postgres  ${redact(databaseUrl)} (embedded, data in ${dir})`);
    }
    return { databaseUrl, redisUrl, describe, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

// Every service process started by this module, in start order. Module-wide so that a Ctrl-C that
// arrives while provideServices() is still starting things can stop what it already started.
const started: Managed[] = [];

/** Stops the services this process started, newest first. */
export async function stopStartedServices(): Promise<void> {
  for (const managed of started.splice(0).reverse()) await stopManaged(managed);
}

const redact = (url: string) => url.replace(/\/\/([^:/@]+):[^@]+@/, "//$1:***@");

/** Finds an executable on PATH, as the shell would. */
export function which(command: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    const candidate = join(dir, command);
    if (dir && existsSync(candidate)) return candidate;
  }
  return undefined;
}

async function startPrivateRedis(dir: string, log: Log): Promise<{ url: string; managed: Managed }> {
  const binary = which("redis-server");
  if (!binary) {
    throw new Error(
      "redis-server not found: install Redis (apt install redis-server / brew install redis) or set REDIS_URL",
    );
  }
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  log(`starting a private Redis on port ${port}`);
  // No persistence: this Redis holds only caches, registries and queues that are rebuilt on start.
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir];
  const managed = spawnManaged("redis", binary, args, { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  managed.child.stdout?.on("data", (d) => (output += d));
  managed.child.stderr?.on("data", (d) => (output += d));
  const url = `redis://127.0.0.1:${port}`;
  let exited = false;
  void managed.exited.then(() => (exited = true));
  try {
    await waitUntil(
      "redis-server to accept connections",
      async () => {
        if (exited) throw new Error(`redis-server exited during start-up:\n${output.trim()}`);
        return ping(url);
      },
      15_000,
    );
  } catch (error) {
    await stopManaged(managed, 2_000);
    throw exited ? new Error(`redis-server exited during start-up:\n${output.trim()}`) : error;
  }
  return { url, managed };
}

async function ping(url: string): Promise<boolean> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on("error", () => {});
  try {
    await redis.connect();
    return (await redis.ping()) === "PONG";
  } finally {
    redis.disconnect();
  }
}

async function startEmbeddedPostgres(dir: string, log: Log, fast: boolean): Promise<{ url: string; managed: Managed }> {
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  log(`starting embedded Postgres on port ${port} (data in ${dir})`);
  const script = resolve(ROOT, "scripts/lib/postgres-server.ts");
  const managed = spawnManaged(
    "postgres",
    process.execPath,
    ["--import", "tsx", script, dir, String(port), ...(fast ? ["--fast"] : [])],
    { cwd: ROOT, stdio: ["ignore", "inherit", "inherit", "ipc"] },
  );
  const outcome = await new Promise<{ ready?: boolean; error?: string }>((done) => {
    managed.child.once("message", (message) => done(message as { ready?: boolean; error?: string }));
    void managed.exited.then((code) => done({ error: `embedded Postgres exited with code ${code} during start-up` }));
    // initdb on a slow disk can take a while, but not this long.
    setTimeout(() => done({ error: "embedded Postgres did not start within 120 s" }), 120_000).unref();
  });
  if (!outcome.ready) {
    await stopManaged(managed, 5_000);
    throw new Error(`embedded Postgres failed to start: ${outcome.error}`);
  }
  managed.child.disconnect?.();
  return { url: `postgresql://postgres:kiln@127.0.0.1:${port}/postgres`, managed };
}

/** Creates `name` on the server if it does not exist yet and returns its URL. */
async function ensureDatabase(serverUrl: string, name: string): Promise<string> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    const { rowCount } = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]);
    if (!rowCount) await client.query(`CREATE DATABASE "${name}"`);
  } finally {
    await client.end();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}
