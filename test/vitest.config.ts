import { defineProject } from "vitest/config";

// End-to-end tests: real processes, real HTTP. They share the machine's CPU with each other,
// so they run one file at a time and get generous timeouts.
export default defineProject({
  test: {
    name: "e2e",
    include: ["**/*.test.ts"],
    fileParallelism: false,
    testTimeout: 300_000,
    hookTimeout: 300_000,
  },
});
