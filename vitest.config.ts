import { defineConfig } from "vitest/config";

// Every workspace is a project (named after its package, or by its own vitest.config.ts), plus the
// end-to-end tests in test/. Run one with `npm test -- --project @kiln/gateway`: scripts/test.ts
// first brings up the Postgres and Redis that integration tests need.
export default defineConfig({
  test: {
    projects: ["packages/*", "apps/*", "native/vitest.config.{ts,mts,js}", "test"],
  },
});
