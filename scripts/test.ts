// `npm test [-- vitest args]`: brings up Postgres and Redis (from DATABASE_URL / REDIS_URL, or
// embedded and private ones), runs vitest across all workspaces, then the native engine's unit
// tests and conformance suites, and ends with one line: "N passed, M failed".
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { ROOT } from "./lib/paths.ts";
import { run } from "./lib/processes.ts";
import { provideServices, type Services } from "./lib/services.ts";
import { ensureWebBuild } from "./lib/web-build.ts";

const args = process.argv.slice(2);
const log = (line: string) => console.log(`[kiln test] ${line}`);
const dataDir = resolve(ROOT, process.env.KILN_DATA_DIR || ".kiln");
const report = join(dataDir, "test-results", `vitest-${process.pid}.json`);

/** The --project filters given on the command line, e.g. ["@kiln/db"]. */
function projectFilters(argv: string[]): string[] {
  const filters: string[] = [];
  argv.forEach((arg, i) => {
    if (arg === "--project" && argv[i + 1]) filters.push(argv[i + 1] as string);
    else if (arg.startsWith("--project=")) filters.push(arg.slice("--project=".length));
  });
  return filters;
}
const projects = projectFilters(args);
const wants = (project: string) => projects.length === 0 || projects.includes(project);

type VitestReport = {
  numPassedTests: number;
  numFailedTests: number;
  testResults: { status: string; assertionResults: { status: string }[] }[];
};

function countResults(): { passed: number; failed: number } {
  if (!existsSync(report)) return { passed: 0, failed: 1 }; // vitest died before reporting
  const json = JSON.parse(readFileSync(report, "utf8")) as VitestReport;
  // A file that fails to load has no tests but is a failure all the same.
  const brokenFiles = json.testResults.filter(
    (file) => file.status === "failed" && !file.assertionResults.some((t) => t.status === "failed"),
  ).length;
  return { passed: json.numPassedTests, failed: json.numFailedTests + brokenFiles };
}

/** Builds and runs native/'s kiln_tests, echoing its output; counts from its "native: N passed, M failed" line. */
async function runNativeTests(env: NodeJS.ProcessEnv): Promise<{ passed: number; failed: number }> {
  const build = await run(process.execPath, [join(ROOT, "native/scripts/build-tools.mjs"), "kiln_tests"], {
    cwd: ROOT,
    env,
  });
  if (build !== 0) return { passed: 0, failed: 1 };
  const child = spawn(process.execPath, [join(ROOT, "native/scripts/run-tests.mjs")], {
    cwd: ROOT,
    env,
    stdio: ["ignore", "pipe", "inherit"],
  });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => {
    output += chunk.toString();
    process.stdout.write(chunk);
  });
  const code: number = await new Promise((done) => child.on("close", (status) => done(status ?? 1)));
  const counts = /native: (\d+) passed, (\d+) failed/.exec(output);
  if (!counts) return { passed: 0, failed: 1 }; // crashed before its summary
  const nativeFailed = Number(counts[2]);
  return { passed: Number(counts[1]), failed: code !== 0 && nativeFailed === 0 ? 1 : nativeFailed };
}

let services: Services | undefined;
let interrupted = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    // Children get the terminal's Ctrl-C themselves; stop our services once they are done.
    interrupted = true;
  });
}

let exitCode = 1;
try {
  // Separate from `npm start`'s data so both can run at once.
  services = await provideServices({ dataDir: join(dataDir, "test"), log, fast: true, database: "kiln_test" });
  for (const line of services.describe) log(line);
  if (interrupted) throw new Error("interrupted");
  // End-to-end tests run the production web build; make it once, up front, not inside a test.
  if (wants("e2e")) await ensureWebBuild(log);

  mkdirSync(join(dataDir, "test-results"), { recursive: true });
  rmSync(report, { force: true });
  const env = {
    ...process.env,
    DATABASE_URL: services.databaseUrl,
    REDIS_URL: services.redisUrl,
    NEXT_TELEMETRY_DISABLED: "1",
  };
  const vitestPackage = createRequire(join(ROOT, "package.json")).resolve("vitest/package.json");
  const vitest = join(dirname(vitestPackage), "vitest.mjs");
  const vitestCode = await run(
    process.execPath,
    [vitest, "run", "--reporter=default", "--reporter=json", `--outputFile.json=${report}`, ...args],
    { cwd: ROOT, env },
  );
  const vitestCounts = countResults();
  let passed = vitestCounts.passed;
  let failed = vitestCounts.failed;
  let conformanceFailed = 0;

  // The native engine's unit tests (C++), built in the addon's CMake folder; their counts join the total.
  if (!interrupted && wants("@kiln/native")) {
    log("native unit tests");
    const native = await runNativeTests(env);
    passed += native.passed;
    failed += native.failed;
  }

  // The engine's own conformance suites (C++ and TypeScript), when that workspace has them.
  if (!interrupted && existsSync(join(ROOT, "packages/engine/package.json")) && wants("@kiln/engine")) {
    log("engine conformance");
    const code = await run("npm", ["run", "conformance", "--if-present", "-w", "@kiln/engine"], { cwd: ROOT, env });
    if (code !== 0) conformanceFailed = 1;
  }

  const totalFailed = failed + conformanceFailed;
  if (conformanceFailed) log("engine conformance failed (counted as one failure)");
  console.log(`${passed} passed, ${totalFailed} failed`);
  exitCode = vitestCode !== 0 || totalFailed > 0 || interrupted ? 1 : 0;
} catch (error) {
  console.error(`[kiln test] ${(error as Error).message}`);
  console.log("0 passed, 1 failed");
} finally {
  await services?.stop();
}
process.exit(exitCode);
