import { type ChildProcess, spawn } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isAlive, listProcesses } from "../scripts/lib/processes.ts";

export { ROOT, WEB_DIR } from "../scripts/lib/paths.ts";
export { freePort, isAlive, listProcesses, sleep, waitUntil } from "../scripts/lib/processes.ts";

/** A temporary folder that the `postgres` user can reach too (embedded Postgres runs as it under root). */
export function tempDir(prefix: string): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(path, 0o755);
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/**
 * A process's identity: its pid plus its start time (Linux), so that a pid reused by an unrelated
 * process later is never mistaken for one of ours, and never killed by a test's cleanup.
 */
export function identityOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Field 22 (starttime) counted after the ")" that closes the command name.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields[0] === "Z") return undefined; // a zombie is dead, only not yet reaped
    return `${pid}@${fields[19]}`;
  } catch {
    return existsSync("/proc") ? undefined : isAlive(pid) ? `${pid}` : undefined;
  }
}

/** Every process below `pid`, found by walking parent links. */
export function descendantsOf(pid: number): Set<number> {
  const processes = listProcesses();
  const found = new Set<number>();
  let frontier = [pid];
  while (frontier.length > 0) {
    const children = processes.filter((p) => frontier.includes(p.ppid) && !found.has(p.pid)).map((p) => p.pid);
    for (const child of children) found.add(child);
    frontier = children;
  }
  return found;
}

export type Started = { child: ChildProcess; output: () => string; exited: Promise<number | null> };

/** Spawns a command as the leader of a new process group, like a shell does for a foreground job. */
export function startGroup(command: string, args: string[], options: { cwd: string; env: NodeJS.ProcessEnv }): Started {
  const child = spawn(command, args, { ...options, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout?.on("data", (d) => (output += d));
  child.stderr?.on("data", (d) => (output += d));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, output: () => output, exited };
}
