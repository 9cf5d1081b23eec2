import { type ChildProcess, execFileSync, type SpawnOptions, spawn } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";

/** A port that was free a moment ago (bound by us, then released). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it returns true, or throws after `timeoutMs` with `what` in the message. */
export async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await sleep(200)) {
    if (await check().catch(() => false)) return;
  }
  throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}`);
}

export const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

export type ProcessInfo = { pid: number; ppid: number; pgid: number };

/** Every live process on the machine (zombies excluded: they are dead, only not yet reaped). */
export function listProcesses(): ProcessInfo[] {
  const out = execFileSync("ps", ["-A", "-o", "pid=,ppid=,pgid=,stat="], { encoding: "utf8" });
  return out
    .split("\n")
    .map((line) => line.trim().split(/\s+/))
    .filter((cols) => cols.length >= 4 && !cols[3]?.startsWith("Z"))
    .map(([pid, ppid, pgid]) => ({ pid: Number(pid), ppid: Number(ppid), pgid: Number(pgid) }));
}

const groupAlive = (pgid: number) => isAlive(-pgid) && listProcesses().some((p) => p.pgid === pgid);

export type Managed = { name: string; child: ChildProcess; exited: Promise<number | null> };

/**
 * Spawns a process as the leader of its own process group, so that stopping it also stops whatever
 * it started (Next.js and tsx spawn helpers), and so that a Ctrl-C in the terminal reaches only us:
 * we then stop the children in a deliberate order.
 */
export function spawnManaged(name: string, command: string, args: string[], options: SpawnOptions): Managed {
  const child = spawn(command, args, { ...options, detached: true });
  const exited = new Promise<number | null>((resolve) => {
    child.once("exit", (code, signal) => resolve(code ?? (signal ? 128 : null)));
    child.once("error", () => resolve(null));
  });
  return { name, child, exited };
}

/** SIGTERM to the whole group, then SIGKILL to whatever is left after `graceMs`. */
export async function stopManaged(
  managed: Managed,
  graceMs = 10_000,
  signal: NodeJS.Signals = "SIGTERM",
): Promise<void> {
  const pid = managed.child.pid;
  if (pid === undefined) return;
  if (groupAlive(pid)) {
    try {
      process.kill(-pid, signal);
    } catch {
      // Already gone.
    }
  }
  const timer = setTimeout(() => {
    if (groupAlive(pid)) process.kill(-pid, "SIGKILL");
  }, graceMs);
  await managed.exited;
  // The leader may exit before its children; give them the same grace, then make sure.
  for (const deadline = Date.now() + graceMs; groupAlive(pid) && Date.now() < deadline; ) await sleep(100);
  clearTimeout(timer);
  if (groupAlive(pid)) {
    process.kill(-pid, "SIGKILL");
    for (const deadline = Date.now() + 5_000; groupAlive(pid) && Date.now() < deadline; ) await sleep(50);
  }
}

/** Runs a command to completion, inheriting stdio; resolves with its exit code. */
export async function run(command: string, args: string[], options: SpawnOptions = {}): Promise<number> {
  const child = spawn(command, args, { stdio: "inherit", ...options });
  const [code, signal] = (await once(child, "exit")) as [number | null, NodeJS.Signals | null];
  return code ?? (signal ? 128 : 1);
}
