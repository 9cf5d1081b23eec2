// The gateway -> worker hop over a Unix domain socket when both run on the same host: the worker
// listens on a socket besides its TCP port and publishes its path with its replicas, together with
// the identity of its host; a gateway whose host identity matches connects there first and falls
// back to TCP when the socket cannot be reached. A Unix socket costs the kernel less per send and
// per wake-up than loopback TCP (no TCP state machine, no Nagle or delayed ACKs, no softirq).
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync, unlinkSync } from "node:fs";
import { connect } from "node:net";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";

let hostId: string | undefined;

/**
 * This machine's identity: the hostname and, where Linux tells it, the kernel's boot id (two hosts
 * or containers may share a hostname; a boot id is random per boot). Containers on one host with
 * their own hostnames differ; ones that share a hostname and a kernel but not a filesystem find no
 * socket at the path and use TCP.
 */
export function hostIdentity(): string {
  if (hostId === undefined) {
    let bootId = "";
    try {
      bootId = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
    } catch {
      // Not Linux, or /proc is not mounted: the hostname alone.
    }
    hostId = bootId ? `${hostname()}/${bootId}` : hostname();
  }
  return hostId;
}

export interface LocalSocketSetting {
  /** Whether workers listen on a Unix socket and gateways use one on their own host. */
  isEnabled: boolean;
  /** Folder of workers' sockets. */
  dir: string;
}

/**
 * The setting from a validated config (@kiln/config's SERVING_UNIX_SOCKET and SERVING_SOCKET_DIR):
 * the socket folder defaults to the OS temporary folder.
 */
export function localSocketSetting(config: {
  SERVING_UNIX_SOCKET: boolean;
  SERVING_SOCKET_DIR?: string | undefined;
}): LocalSocketSetting {
  return { isEnabled: config.SERVING_UNIX_SOCKET, dir: config.SERVING_SOCKET_DIR ?? tmpdir() };
}

const SOCKET_NAME = /^kiln-serving-(\d+)-[0-9a-f]+\.sock$/;

/** A fresh socket path for this process in `dir` (the process id lets a later worker clean up). */
export function newSocketPath(dir: string): string {
  return join(dir, `kiln-serving-${process.pid}-${randomBytes(4).toString("hex")}.sock`);
}

/**
 * Removes sockets left in `dir` by workers that were killed outright (a stopping worker removes its
 * own): ours by name, whose process is gone, and that nobody answers on. The last check keeps a
 * live socket of a worker in another PID namespace that shares the folder (a pid means nothing
 * there). Whatever cannot be checked or removed is left alone.
 */
export async function removeStaleSockets(dir: string): Promise<void> {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  const candidates = names.filter((name) => {
    const pid = Number(SOCKET_NAME.exec(name)?.[1] ?? 0);
    return pid !== 0 && pid !== process.pid && !isAlive(pid);
  });
  await Promise.all(
    candidates.map(async (name) => {
      const path = join(dir, name);
      if (await isListening(path)) return;
      try {
        unlinkSync(path);
      } catch {
        // Gone already, or not ours to remove.
      }
    }),
  );
}

/** Whether something accepts connections on the socket at `path` (a refused or failed connect: no). */
function isListening(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(path);
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: string }).code === "EPERM";
  }
}

/**
 * Whether a gateway on the host `localHostId` may try a replica's socket: only one published from
 * the same host (undefined: the gateway has local sockets turned off).
 */
export function isSameHost(record: { socketPath?: string; hostId?: string }, localHostId: string | undefined): boolean {
  return record.socketPath !== undefined && localHostId !== undefined && record.hostId === localHostId;
}
