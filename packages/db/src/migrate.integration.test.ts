import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { checksumOf, MIGRATIONS_DIR, migrate, readMigrations } from "./migrate.ts";
import { createTestDatabase, type TestDatabase } from "./testing.ts";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function emptyDatabase(): Promise<TestDatabase> {
  const db = await createTestDatabase(undefined, { migrate: false });
  cleanups.push(db.drop);
  return db;
}

async function query<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}

function tempDir(copyMigrations: boolean): string {
  const dir = mkdtempSync(join(tmpdir(), "kiln-migrations-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  if (copyMigrations) cpSync(MIGRATIONS_DIR, dir, { recursive: true });
  return dir;
}

function addMigration(dir: string, name: string, sql: string): void {
  mkdirSync(join(dir, name), { recursive: true });
  writeFileSync(join(dir, name, "migration.sql"), sql);
}

describe("migrate", () => {
  it("applies every migration once and records it the way Prisma does", async () => {
    const db = await emptyDatabase();
    const migrations = readMigrations();
    const names = migrations.map((m) => m.name);
    expect(names.length).toBeGreaterThan(0);

    expect(await migrate(db.url)).toEqual({ applied: names, alreadyApplied: [] });
    expect(await migrate(db.url)).toEqual({ applied: [], alreadyApplied: names });

    const rows = await query<{
      migration_name: string;
      checksum: string;
      finished_at: Date;
      applied_steps_count: number;
    }>(
      db.url,
      `SELECT migration_name, checksum, finished_at, applied_steps_count FROM "_prisma_migrations" ORDER BY migration_name`,
    );
    expect(rows.map((r) => r.migration_name)).toEqual(names);
    for (const [i, m] of migrations.entries()) {
      expect(rows[i]?.checksum).toBe(checksumOf(m.sql));
      expect(rows[i]?.finished_at).toBeInstanceOf(Date);
      expect(rows[i]?.applied_steps_count).toBe(1);
    }
    const tables = await query<{ n: string }>(
      db.url,
      "SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'public'",
    );
    expect(Number(tables[0]?.n)).toBeGreaterThan(10);
  });

  it("is safe to run concurrently", async () => {
    const db = await emptyDatabase();
    const results = await Promise.all([migrate(db.url), migrate(db.url), migrate(db.url)]);
    expect(results.flatMap((r) => r.applied)).toEqual(readMigrations().map((m) => m.name));
  });

  it("applies only new migrations", async () => {
    const db = await emptyDatabase();
    const dir = tempDir(true);
    await migrate(db.url, { dir });
    addMigration(dir, "29990101000000_add_note", `ALTER TABLE "models" ADD COLUMN "note" TEXT;\n`);
    expect((await migrate(db.url, { dir })).applied).toEqual(["29990101000000_add_note"]);
  });

  it("refuses a migration that was edited after it was applied", async () => {
    const db = await emptyDatabase();
    const dir = tempDir(true);
    await migrate(db.url, { dir });
    addMigration(dir, readMigrations(dir)[0]?.name as string, "-- edited\nSELECT 1;\n");
    await expect(migrate(db.url, { dir })).rejects.toThrow(/edited after it was applied/);
  });

  it("rolls a failed migration back and records nothing", async () => {
    const db = await emptyDatabase();
    const dir = tempDir(false);
    addMigration(dir, "20000101000000_broken", `CREATE TABLE "half" (id TEXT);\nSELECT * FROM "no_such_table";\n`);

    await expect(migrate(db.url, { dir })).rejects.toThrow(/20000101000000_broken failed: .*no_such_table/);
    expect(await query(db.url, "SELECT 1 FROM pg_tables WHERE tablename = 'half'")).toEqual([]);
    expect(await query(db.url, `SELECT 1 FROM "_prisma_migrations"`)).toEqual([]);
  });
});
