import { defineConfig } from "prisma/config";

// Prisma 7 reads the connection string from here rather than from schema.prisma. It is optional
// so that `prisma generate` (which needs no database) works without DATABASE_URL.
export default defineConfig({
  schema: "prisma/schema.prisma",
  migrations: { path: "prisma/migrations" },
  datasource: { url: process.env.DATABASE_URL ?? "" },
});
