export { createPrismaClient, type PrismaClient } from "./client.ts";
export { Prisma } from "./generated/prisma/client.ts";
export * from "./generated/prisma/enums.ts";
export { ID_PREFIXES, type IdPrefix, isId, newId } from "./ids.ts";
export { checksumOf, MIGRATIONS_DIR, type MigrateResult, MigrationError, migrate, readMigrations } from "./migrate.ts";
