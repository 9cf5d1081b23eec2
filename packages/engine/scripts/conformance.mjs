#!/usr/bin/env node
// Runs the native ONNX conformance runner (native/tools/conformance.cc) over the shared suite,
// forwarding its output and exit code:
//   node packages/engine/scripts/conformance.mjs [runner args...]
// The suite is shared/conformance/onnx next to the repository or at /work/shared;
// KILN_CONFORMANCE_ROOT overrides it. The runner is looked up in the CMake build
// folder after an incremental build (KILN_CONFORMANCE_BIN overrides it).
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { availableParallelism, constants } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
// The suite lives in the workspace's shared/ folder, beside the main checkout; a clone elsewhere
// (CI clones to a temporary folder) finds it at the workspace's absolute path.
const rootCandidates = [resolve(repo, "../shared/conformance/onnx"), "/work/shared/conformance/onnx"];
const root = process.env.KILN_CONFORMANCE_ROOT ?? rootCandidates.find((p) => existsSync(p)) ?? rootCandidates[0];

// Where native/scripts/build-tools.mjs builds: the addon's folder, else a folder of its own.
function findRunner() {
  const native = join(repo, "native");
  const build = existsSync(join(native, "build", "CMakeCache.txt")) ? "build" : "build-tools";
  return join(native, build, "kiln_conformance");
}

// A fresh clone (CI) has only the addon's build: build the runner there (the engine's objects are
// reused), through native/scripts/build-tools.mjs.
function buildRunner() {
  console.log("conformance: building kiln_conformance");
  const script = join(repo, "native", "scripts", "build-tools.mjs");
  if (spawnSync(process.execPath, [script, "kiln_conformance"], { stdio: "inherit" }).status !== 0) return undefined;
  return findRunner();
}

// Always through the build: a runner older than the sources would test yesterday's engine.
const runner = process.env.KILN_CONFORMANCE_BIN ?? buildRunner();
if (!runner || !existsSync(runner)) {
  console.error(
    `conformance: kiln_conformance could not be built${runner ? ` (looked for ${runner})` : ""}.\n` +
      "Build it with: npm run build:tools -w @kiln/native",
  );
  process.exit(2);
}
if (!existsSync(root)) {
  console.error(`conformance: suite not found at ${root} (set KILN_CONFORMANCE_ROOT)`);
  process.exit(2);
}

// Documented gaps live in native/conformance/known-failures.txt ("suite/test  reason"); with that
// list present, any other failure fails the run. Until the list is first recorded the counts are
// reported without gating (say so loudly), so the suite's numbers are visible from day one.
const known = join(repo, "native", "conformance", "known-failures.txt");
const gate = existsSync(known);
const failuresOut = join(repo, ".kiln", "conformance-failures.txt");
mkdirSync(dirname(failuresOut), { recursive: true });
// One test per core at a time (each test runs in an isolated worker process); an explicit --jobs wins.
const userArgs = process.argv.slice(2);
const jobs = userArgs.includes("--jobs") ? [] : ["--jobs", String(availableParallelism())];
const runnerArgs = [root, "--failures", failuresOut, ...(gate ? ["--known", known] : []), ...jobs, ...userArgs];
if (!gate) console.log(`conformance: ${known} not recorded yet: reporting counts without gating`);
const child = spawn(runner, runnerArgs, { stdio: "inherit" });
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => child.kill(signal));
child.on("error", (error) => {
  console.error(`conformance: cannot start ${runner}: ${error.message}`);
  process.exit(2);
});
child.on("exit", (code, signal) => {
  // A runner killed by a signal exits the way a shell reports it: 128 + the signal number.
  const status = signal ? 128 + (constants.signals[signal] ?? 0) : (code ?? 1);
  process.exit(!gate && status === 1 ? 0 : status);
});
