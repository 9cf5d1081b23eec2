// Generates the Prisma client into packages/db/src/generated (runs on npm install).
// Plain .mjs because it runs from postinstall, before anyone can rely on tsx.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(join(root, "packages/db/package.json"));

let cli;
try {
  cli = require.resolve("prisma/build/index.js");
} catch {
  // A partial install (e.g. npm install -w some-other-package) may lack prisma; nothing to do then.
  console.warn("prisma-generate: prisma is not installed yet, skipping client generation");
  process.exit(0);
}

// `prisma generate` never runs the schema engine, but Prisma 7's CLI tries to download one first,
// which fails offline. Pointing the variable at any existing file skips that download.
const env = { ...process.env };
if (!env.PRISMA_SCHEMA_ENGINE_BINARY || !existsSync(env.PRISMA_SCHEMA_ENGINE_BINARY)) {
  env.PRISMA_SCHEMA_ENGINE_BINARY = process.execPath;
}
env.PRISMA_HIDE_UPDATE_MESSAGE = "1";

const result = spawnSync(process.execPath, [cli, "generate"], { cwd: root, env, stdio: "inherit" });
process.exit(result.status ?? 1);
