import { defineProject } from "vitest/config";

export default defineProject({ test: { name: "@kiln/auth", testTimeout: 60_000, hookTimeout: 60_000 } });
