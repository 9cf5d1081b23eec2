import { defineProject } from "vitest/config";

export default defineProject({ test: { name: "@kiln/worker", testTimeout: 30_000, hookTimeout: 30_000 } });
