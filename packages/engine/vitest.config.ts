import { defineProject } from "vitest/config";

// Engine builds run real optimization, measurement and planning on a shared 2-core machine.
export default defineProject({ test: { name: "@kiln/engine", include: ["src/**/*.test.ts"], testTimeout: 120_000 } });
