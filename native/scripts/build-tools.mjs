#!/usr/bin/env node
// Builds the native unit tests (kiln_tests) and the conformance runner (kiln_conformance) in the
// addon's own CMake build folder, so the engine's sources compile once for the addon, the tests
// and the tools (`npm install` builds only the addon). Prints the build folder on success.
//   node native/scripts/build-tools.mjs [target...]
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const native = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const targets = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ["kiln_tests", "kiln_conformance"];
// The addon's folder when `npm install` made one (same compiler flags: its objects are reused);
// otherwise a folder of its own.
const build = existsSync(join(native, "build", "CMakeCache.txt")) ? join(native, "build") : join(native, "build-tools");

function step(command, args) {
  const result = spawnSync(command, args, { stdio: ["ignore", "inherit", "inherit"] });
  if (result.error) {
    console.error(`native: cannot run ${command}: ${result.error.message} (install CMake and a C++ toolchain)`);
    process.exit(2);
  }
  if (result.status !== 0) process.exit(result.status ?? 1);
}

const configure = ["-S", native, "-B", build, "-DKILN_BUILD_TESTS=ON"];
if (!existsSync(join(build, "CMakeCache.txt"))) configure.push("-DCMAKE_BUILD_TYPE=Release");
step("cmake", configure);
step("cmake", ["--build", build, "--parallel", "2", "--target", ...targets]);
console.log(`native: built ${targets.join(", ")} in ${build}`);
