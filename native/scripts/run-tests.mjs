#!/usr/bin/env node
// Runs the native unit tests built by build-tools.mjs: node native/scripts/run-tests.mjs [filter]
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const native = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const binary = ["build", "build-tools"].map((d) => join(native, d, "kiln_tests")).find((p) => existsSync(p));
if (!binary) {
  console.error("native: kiln_tests is not built (run: npm run build:tools -w @kiln/native)");
  process.exit(2);
}
const result = spawnSync(binary, process.argv.slice(2), { stdio: "inherit" });
process.exit(result.status ?? 1);
