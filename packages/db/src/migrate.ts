import { createHash, randomUUID } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";

/** prisma/migrations at the repository root, in Prisma Migrate's folder format. */
export const MIGRATIONS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "../../../prisma/migrations");

// The same lock id Prisma Migrate takes, so `prisma migrate deploy` and this never run at once.
const PRISMA_ADVISORY_LOCK = 72707369;

// Prisma's own bookkeeping table, byte for byte, so either tool can pick up where the other stopped.
const CREATE_MIGRATIONS_TABLE = `
CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)`;

export class MigrationError extends Error {
  readonly code = "MIGRATION_FAILED";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "MigrationError";
  }
}

export type Migration = { name: string; sql: string; checksum: string };
export type MigrateResult = { applied: string[]; alreadyApplied: string[] };

/** Prisma's checksum: SHA-256 of the file, hex. */
export function checksumOf(sql: string): string {
  return createHash("sha256").update(sql).digest("hex");
}

/** The migrations on disk, oldest first (folder names start with a timestamp). */
export function readMigrations(dir: string = MIGRATIONS_DIR): Migration[] {
  if (!existsSync(dir)) throw new MigrationError(`migrations folder not found: ${dir}`);
  return readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && existsSync(join(dir, entry.name, "migration.sql")))
    .map((entry) => entry.name)
    .sort()
    .map((name) => {
      const sql = readFileSync(join(dir, name, "migration.sql"), "utf8");
      return { name, sql, checksum: checksumOf(sql) };
    });
}

type Row = { migration_name: string; checksum: string; finished_at: Date | null; rolled_back_at: Date | null };

/**
 * Applies the migrations that the database has not recorded yet, each in its own transaction, and
 * records them in `_prisma_migrations` exactly as `prisma migrate deploy` would. Safe to run any
 * number of times and from several processes at once. This exists because Prisma's migrate engine
 * cannot run offline; where it can, `prisma migrate deploy` does the same job.
 */
export async function migrate(databaseUrl: string, options: { dir?: string } = {}): Promise<MigrateResult> {
  const migrations = readMigrations(options.dir);
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  const result: MigrateResult = { applied: [], alreadyApplied: [] };
  try {
    await client.query("SELECT pg_advisory_lock($1)", [PRISMA_ADVISORY_LOCK]);
    await client.query(CREATE_MIGRATIONS_TABLE);
    const { rows } = await client.query<Row>(
      `SELECT migration_name, checksum, finished_at, rolled_back_at FROM "_prisma_migrations"`,
    );
    const recorded = new Map<string, Row>();
    for (const row of rows) if (!row.rolled_back_at) recorded.set(row.migration_name, row);

    for (const migration of migrations) {
      const row = recorded.get(migration.name);
      if (row && !row.finished_at) {
        throw new MigrationError(
          `migration ${migration.name} started but did not finish; fix the database, then mark it ` +
            "with `prisma migrate resolve` (see Prisma's docs on failed migrations)",
        );
      }
      if (row) {
        // Prisma tolerates line-ending changes made by git checkouts; so do we.
        const sameFile = [migration.checksum, checksumOf(migration.sql.replace(/\r\n/g, "\n"))].includes(row.checksum);
        if (!sameFile) {
          throw new MigrationError(`migration ${migration.name} was edited after it was applied (checksum differs)`);
        }
        result.alreadyApplied.push(migration.name);
        continue;
      }
      await apply(client, migration);
      result.applied.push(migration.name);
    }
  } finally {
    await client.query("SELECT pg_advisory_unlock($1)", [PRISMA_ADVISORY_LOCK]).catch(() => {});
    await client.end();
  }
  return result;
}

async function apply(client: pg.Client, migration: Migration): Promise<void> {
  // Postgres DDL is transactional: a failed migration leaves nothing half-done and nothing recorded.
  await client.query("BEGIN");
  try {
    await client.query(migration.sql);
    await client.query(
      `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at, finished_at, applied_steps_count)
       VALUES ($1, $2, $3, now(), now(), 1)`,
      [randomUUID(), migration.checksum, migration.name],
    );
    await client.query("COMMIT");
  } catch (error) {
    await client.query("ROLLBACK");
    throw new MigrationError(`migration ${migration.name} failed: ${(error as Error).message}`, { cause: error });
  }
}
