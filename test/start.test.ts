import { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import {
  descendantsOf,
  freePort,
  identityOf,
  ROOT,
  type Started,
  sleep,
  startGroup,
  tempDir,
  waitUntil,
} from "./support.ts";

// `npm start` as a person runs it: in a terminal, stopped with Ctrl-C (SIGINT to the foreground
// process group). It must bring everything up and, on Ctrl-C, leave no process behind.
/** The recorded processes that still run (same pid and start time), as "pid@starttime". */
const stillRunning = (seen: Set<string>) =>
  [...seen].filter((identity) => identityOf(Number.parseInt(identity, 10)) === identity);

describe("npm start", () => {
  const cleanups: (() => void)[] = [];
  afterEach(() => {
    for (const cleanup of cleanups.splice(0)) cleanup();
  });

  async function startKiln(env: NodeJS.ProcessEnv) {
    const data = tempDir("kiln-start-");
    cleanups.push(data.remove);
    const webPort = await freePort();
    const gatewayPort = await freePort();
    const started = startGroup("npm", ["start"], {
      cwd: ROOT,
      env: { ...env, KILN_DATA_DIR: data.path, WEB_PORT: String(webPort), GATEWAY_PORT: String(gatewayPort) },
    });
    // Record every process the run creates, while it runs; checked after Ctrl-C.
    const seen = new Set<string>();
    const record = () => {
      for (const pid of [started.child.pid as number, ...descendantsOf(started.child.pid as number)]) {
        const identity = identityOf(pid);
        if (identity) seen.add(identity);
      }
    };
    const watcher = setInterval(record, 200);
    cleanups.push(() => {
      clearInterval(watcher);
      // If an assertion failed midway, do not leave the stack running: kill whatever is left.
      for (const identity of stillRunning(seen)) process.kill(Number.parseInt(identity, 10), "SIGKILL");
    });
    await waitUntil(
      "Kiln to report that it is running",
      async () => {
        if (started.child.exitCode !== null) throw new Error(`npm start exited early:\n${started.output()}`);
        return started.output().includes("Kiln is running");
      },
      240_000,
    ).catch((error) => {
      throw new Error(`${(error as Error).message}\n${started.output()}`);
    });
    return { started, seen, record, web: `http://127.0.0.1:${webPort}`, gateway: `http://127.0.0.1:${gatewayPort}` };
  }

  async function pressCtrlC(started: Started, seen: Set<string>, record: () => void) {
    record();
    process.kill(-(started.child.pid as number), "SIGINT");
    const code = await Promise.race([started.exited, sleep(60_000).then(() => "timeout" as const)]);
    expect(code, started.output()).not.toBe("timeout");
    // npm waits for the script, and the script for everything it started.
    expect(started.output()).toContain("[kiln] stopped");
    const leftovers = stillRunning(seen);
    expect(leftovers, `processes left behind:\n${started.output().slice(-3000)}`).toEqual([]);
  }

  it("brings up embedded Postgres, a private Redis, web, gateway and worker; Ctrl-C stops them all", async () => {
    const env = { ...process.env };
    delete env.DATABASE_URL;
    delete env.REDIS_URL;
    const { started, seen, record, web, gateway } = await startKiln(env);
    const output = started.output();
    expect(output).toMatch(/postgres\s+postgresql:\/\/\S+ \(embedded/);
    expect(output).toMatch(/redis\s+redis:\/\/\S+ \(private/);

    const ready = await fetch(`${gateway}/v2/health/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ ready: true });
    expect((await fetch(`${web}/api/health`)).status).toBe(200);
    expect(await (await fetch(web)).text()).toContain("Kiln");

    // The worker registered itself in the private Redis.
    const redisUrl = /redis\s+(redis:\/\/\S+) \(private/.exec(output)?.[1] as string;
    const redis = new Redis(redisUrl);
    try {
      expect((await redis.keys("kiln:worker:*")).length).toBe(1);
    } finally {
      redis.disconnect();
    }
    // Embedded Postgres, Redis, Next.js, gateway, worker and their helpers were all seen.
    expect(seen.size).toBeGreaterThan(6);
    await pressCtrlC(started, seen, record);
  });

  it("uses DATABASE_URL and REDIS_URL when they are set, and starts neither", async () => {
    const { started, seen, record, gateway } = await startKiln({ ...process.env });
    expect(started.output()).toContain("(from DATABASE_URL)");
    expect(started.output()).toContain("(from REDIS_URL)");
    expect((await fetch(`${gateway}/v2/health/ready`)).status).toBe(200);
    await pressCtrlC(started, seen, record);
  });
});
