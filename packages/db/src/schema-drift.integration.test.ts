import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MIGRATIONS_DIR } from "./migrate.ts";
import { actualShape, expectedShape, readDatamodel, type SchemaShape } from "./schema-shape.ts";
import { createTestDatabase, type TestDatabase } from "./testing.ts";

const SCHEMA = join(MIGRATIONS_DIR, "..", "schema.prisma");

// Fails when prisma/schema.prisma and prisma/migrations disagree: a model changed without a
// migration, or a migration written by hand that does not produce what the schema describes.
describe("schema.prisma and prisma/migrations", () => {
  let db: TestDatabase;
  let client: pg.Client;
  let expected: SchemaShape;

  beforeAll(async () => {
    db = await createTestDatabase();
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
    expected = expectedShape(await readDatamodel(SCHEMA));
  });
  afterAll(async () => {
    await client?.end();
    await db?.drop();
  });

  it("describe the same tables, columns, keys, indexes, foreign keys and enums", async () => {
    const actual = await actualShape(client);
    expect(Object.keys(actual.tables).sort()).toEqual(Object.keys(expected.tables).sort());
    for (const [name, table] of Object.entries(expected.tables)) {
      expect({ table: name, ...actual.tables[name] }).toEqual({ table: name, ...table });
    }
    expect(actual.enums).toEqual(expected.enums);
  });

  it("covers the whole product's model", () => {
    const tables = Object.keys(expected.tables);
    for (const name of [
      "organizations",
      "memberships",
      "api_keys",
      "models",
      "model_versions",
      "builds",
      "deployments",
    ]) {
      expect(tables).toContain(name);
    }
    for (const name of ["predictions", "usage_rollups", "subscriptions", "audit_logs", "sessions", "accounts"]) {
      expect(tables).toContain(name);
    }
  });

  it("starts every composite index of a tenant-owned table with orgId", () => {
    for (const [name, table] of Object.entries(expected.tables)) {
      if (!table.columns.orgId) continue;
      for (const [indexName, index] of Object.entries(table.indexes)) {
        if (index.columns.length > 1) expect(`${name}.${indexName}: ${index.columns[0]}`).toMatch(/: orgId$/);
      }
    }
  });

  // The comparison above is only worth something if it notices differences; prove that it does.
  describe("notices drift", () => {
    it("in the database", async () => {
      await client.query("BEGIN");
      try {
        await client.query(`DROP INDEX "builds_orgId_status_createdAt_idx"`);
        await client.query(`ALTER TABLE "deployments" ALTER COLUMN "maxBatchSize" DROP NOT NULL`);
        await client.query(`ALTER TABLE "api_keys" ADD COLUMN "extra" TEXT`);
        const drifted = await actualShape(client);
        expect(drifted.tables.builds?.indexes).not.toEqual(expected.tables.builds?.indexes);
        expect(drifted.tables.deployments?.columns.maxBatchSize?.nullable).toBe(true);
        expect(drifted.tables.api_keys?.columns).not.toEqual(expected.tables.api_keys?.columns);
      } finally {
        await client.query("ROLLBACK");
      }
    });

    it("in the schema", async () => {
      const datamodel = await readDatamodel(SCHEMA);
      const build = datamodel.models.find((m) => m.name === "Build");
      const attempts = build?.fields.find((f) => f.name === "attempts");
      if (!attempts) throw new Error("Build.attempts not found");
      attempts.isRequired = false;
      attempts.type = "BigInt";
      const drifted = expectedShape(datamodel);
      expect((await actualShape(client)).tables.builds?.columns).not.toEqual(drifted.tables.builds?.columns);
    });
  });
});
