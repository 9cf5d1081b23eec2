// The worker's Unix socket for gateways on its host: owner-only, served by the same HTTP server as
// the TCP port (plain routes and the kiln-mux/2 upgrade), sockets of killed workers cleaned up at
// start, and the file removed when the worker stops.
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "@kiln/logger";
import { MUX_PATH, MUX_PROTOCOL_2 } from "@kiln/serving";
import { afterAll, describe, expect, it } from "vitest";
import { fsEngineSource } from "./engine-source.ts";
import { startServing } from "./start-serving.ts";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const logger = createLogger({ service: "worker-test", level: "silent" });
const dir = mkdtempSync(join(tmpdir(), "kiln-worker-socket-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const start = (localSocket: { isEnabled: boolean; dir: string }) =>
  startServing({
    workerId: `w-${randomBytes(3).toString("hex")}`,
    redisUrl: REDIS_URL,
    keyPrefix: `kiln-test-${randomBytes(4).toString("hex")}:`,
    target: "cpu",
    heartbeatMs: 1_000,
    host: "127.0.0.1",
    port: 0,
    localSocket,
    slotMemoryBytes: 1024 ** 3,
    engines: fsEngineSource(dir),
    logger,
  });

/** One request over the Unix socket: the status, and the upgrade header when it switched protocols. */
function overSocket(socketPath: string, init: { method: string; path: string; headers?: Record<string, string> }) {
  return new Promise<{ status: number; upgrade?: string }>((resolve, reject) => {
    const req = request({ socketPath, ...init, agent: false });
    req.on("response", (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0 });
    });
    req.on("upgrade", (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, upgrade: res.headers.upgrade });
    });
    req.on("error", reject);
    req.end();
  });
}

describe("the serving endpoint's Unix socket", () => {
  it("is owner-only, serves HTTP and the kiln-mux/2 upgrade, and is removed when the worker stops", async () => {
    // Left by a worker killed outright: its process is gone.
    const deadPid = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"]).stdout.toString();
    const stale = join(dir, `kiln-serving-${deadPid}-0badc0de.sock`);
    writeFileSync(stale, "");

    const serving = await start({ isEnabled: true, dir });
    const socketPath = serving.socketPath as string;
    expect(socketPath.startsWith(join(dir, `kiln-serving-${process.pid}-`))).toBe(true);
    const stat = statSync(socketPath);
    expect(stat.isSocket()).toBe(true);
    expect(stat.mode & 0o777).toBe(0o600);
    expect(existsSync(stale)).toBe(false);
    expect(serving.host.local).toEqual({ socketPath, hostId: expect.any(String) });

    expect((await overSocket(socketPath, { method: "GET", path: "/nothing" })).status).toBe(404);
    const upgraded = await overSocket(socketPath, {
      method: "GET",
      path: MUX_PATH,
      headers: { connection: "Upgrade", upgrade: MUX_PROTOCOL_2 },
    });
    expect(upgraded).toEqual({ status: 101, upgrade: MUX_PROTOCOL_2 });

    await serving.stop();
    expect(existsSync(socketPath)).toBe(false);
  });

  it("is not opened when turned off, nor when it cannot be", async () => {
    const off = await start({ isEnabled: false, dir });
    expect([off.socketPath, off.host.local]).toEqual([undefined, undefined]);
    await off.stop();
    // No such folder: logged, and the worker serves over TCP alone.
    const missing = await start({ isEnabled: true, dir: join(dir, "missing") });
    expect([missing.socketPath, missing.host.local]).toEqual([undefined, undefined]);
    expect((await fetch(`${missing.url}/nothing`)).status).toBe(404);
    await missing.stop();
  });
});
