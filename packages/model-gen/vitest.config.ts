import { defineProject } from "vitest/config";

// Generating and running models is CPU-heavy on a 2-core machine: one file at a time, long timeouts.
export default defineProject({
  test: { name: "@kiln/model-gen", fileParallelism: false, testTimeout: 120_000 },
});
