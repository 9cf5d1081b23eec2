import { defineConfig } from "vitest/config";

// One project per workspace (each has its own vitest.config.ts) plus the end-to-end tests in test/.
// Run one with `npm test -- --project @kiln/gateway`; scripts/test.ts brings up Postgres and Redis.
export default defineConfig({
  test: {
    projects: ["packages/*/vitest.config.ts", "apps/*/vitest.config.ts", "native/vitest.config.{ts,mts,js}", "test/vitest.config.ts"],
  },
});
