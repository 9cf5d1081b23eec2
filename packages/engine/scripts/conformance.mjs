#!/usr/bin/env node
// Runs the native ONNX conformance runner (native/tools/conformance.cc) over the shared suite,
// forwarding its output and exit code:
//   node packages/engine/scripts/conformance.mjs [runner args...]
// The suite is shared/conformance/onnx next to the repository (the repo is always cloned beside
// shared/); KILN_CONFORMANCE_ROOT overrides it. The runner is looked up in the CMake build
// folders (KILN_CONFORMANCE_BIN overrides it); the newest one wins.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { constants } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const root = process.env.KILN_CONFORMANCE_ROOT ?? resolve(repo, "../shared/conformance/onnx");

function findRunner() {
  if (process.env.KILN_CONFORMANCE_BIN) return process.env.KILN_CONFORMANCE_BIN;
  const native = join(repo, "native");
  const dirs = readdirSync(native).filter((d) => d.startsWith("build"));
  const candidates = dirs.flatMap((d) => [
    join(native, d, "kiln_conformance"),
    join(native, d, "Release", "kiln_conformance"),
  ]);
  const found = candidates.filter((p) => existsSync(p)).sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  return found[0];
}

// A fresh clone (CI) has only the addon's build (tests off): build the runner once, in its own folder.
function buildRunner() {
  const dir = join(repo, "native", "build-conformance");
  console.log(`conformance: building kiln_conformance in ${dir}`);
  const steps = [
    ["cmake", ["-S", join(repo, "native"), "-B", dir, "-DCMAKE_BUILD_TYPE=Release", "-DKILN_BUILD_TESTS=ON"]],
    ["cmake", ["--build", dir, "--target", "kiln_conformance", "-j2"]],
  ];
  for (const [command, args] of steps) {
    if (spawnSync(command, args, { stdio: "inherit" }).status !== 0) return undefined;
  }
  return join(dir, "kiln_conformance");
}

const runner = findRunner() ?? buildRunner();
if (!runner || !existsSync(runner)) {
  console.error(
    `conformance: no kiln_conformance binary found${runner ? ` at ${runner}` : " under native/build*/"}.\n` +
      "Build it with: cmake -S native -B native/build -DCMAKE_BUILD_TYPE=Release && cmake --build native/build --target kiln_conformance -j2",
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
const runnerArgs = [root, "--failures", failuresOut, ...(gate ? ["--known", known] : []), ...process.argv.slice(2)];
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
