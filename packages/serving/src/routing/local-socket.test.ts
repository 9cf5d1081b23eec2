import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { hostname, tmpdir } from "node:os";
import { basename, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { hostIdentity, isSameHost, localSocketSetting, newSocketPath, removeStaleSockets } from "./local-socket.ts";

const dir = mkdtempSync(join(tmpdir(), "kiln-local-socket-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("local sockets", () => {
  it("identifies the host by its name and boot id, the same on every call", () => {
    expect(hostIdentity().startsWith(hostname())).toBe(true);
    if (existsSync("/proc/sys/kernel/random/boot_id")) expect(hostIdentity()).toMatch(/\/[0-9a-f-]{36}$/);
    expect(hostIdentity()).toBe(hostIdentity());
  });

  it("offers a socket only to a gateway on the host that published it", () => {
    const record = { socketPath: "/tmp/w.sock", hostId: "a/1" };
    expect(isSameHost(record, "a/1")).toBe(true);
    expect(isSameHost(record, "b/1")).toBe(false);
    expect(isSameHost(record, undefined)).toBe(false);
    expect(isSameHost({ hostId: "a/1" }, "a/1")).toBe(false);
    expect(isSameHost({ socketPath: "/tmp/w.sock" }, "a/1")).toBe(false);
  });

  it("takes the switch from the config and puts sockets in the OS temporary folder unless told", () => {
    expect(localSocketSetting({ SERVING_UNIX_SOCKET: true })).toEqual({ isEnabled: true, dir: tmpdir() });
    expect(localSocketSetting({ SERVING_UNIX_SOCKET: false, SERVING_SOCKET_DIR: "/run/kiln" })).toEqual({
      isEnabled: false,
      dir: "/run/kiln",
    });
  });

  it("removes sockets of dead processes that nobody answers on, and keeps the others", async () => {
    const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"]).stdout.toString();
    const mine = newSocketPath(dir);
    expect(basename(mine)).toMatch(new RegExp(`^kiln-serving-${process.pid}-[0-9a-f]{8}\\.sock$`));
    const stale = join(dir, `kiln-serving-${dead}-0badc0de.sock`);
    const other = join(dir, "kiln-serving-notes.txt");
    for (const path of [mine, stale, other]) writeFileSync(path, "");
    // A dead pid whose socket still answers: a worker in another PID namespace sharing the folder.
    const elsewhere = join(dir, `kiln-serving-${dead}-0000beef.sock`);
    const listener = createServer();
    await new Promise<void>((resolve) => listener.listen(elsewhere, resolve));
    await removeStaleSockets(dir);
    expect([mine, stale, other, elsewhere].map((path) => existsSync(path))).toEqual([true, false, true, true]);
    await new Promise((resolve) => listener.close(resolve));
  });
});
