import { existsSync, readdirSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { ROOT, WEB_DIR } from "./paths.ts";
import { run } from "./processes.ts";

const BUILD_ID = join(WEB_DIR, ".next", "BUILD_ID");
// Outputs and caches that tools write into the folder; they are not inputs of the build.
const IGNORED = new Set([".next", "node_modules", ".turbo", "next-env.d.ts", "tsconfig.tsbuildinfo"]);

/** The newest modification time of the web app's sources (and the lockfile: dependencies count too). */
function newestSource(dir: string = WEB_DIR): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    // Tests do not change what is built.
    if (IGNORED.has(entry.name) || /\.test\.tsx?$/.test(entry.name)) continue;
    const path = join(dir, entry.name);
    const mtime = entry.isDirectory() ? newestSource(path) : statSync(path).mtimeMs;
    newest = Math.max(newest, mtime);
  }
  return newest;
}

/** True when a production build exists and no source file changed since it was made. */
export function isWebBuildFresh(): boolean {
  if (!existsSync(BUILD_ID)) return false;
  const lockfile = join(ROOT, "package-lock.json");
  const inputs = Math.max(newestSource(), existsSync(lockfile) ? statSync(lockfile).mtimeMs : 0);
  return statSync(BUILD_ID).mtimeMs >= inputs;
}

export const nextBin = () => createRequire(join(WEB_DIR, "package.json")).resolve("next/dist/bin/next");

/**
 * `next start` serves only what `next build` produced, so build first when there is no build or it
 * is older than the code: a newcomer's `npm start` then always shows the code they have.
 */
export async function ensureWebBuild(log: (line: string) => void): Promise<void> {
  if (isWebBuildFresh()) return;
  log("building the web app (next build; first start only, about a minute)…");
  const code = await run(process.execPath, [nextBin(), "build"], {
    cwd: WEB_DIR,
    env: { ...process.env, NEXT_TELEMETRY_DISABLED: "1" },
  });
  if (code !== 0) throw new Error(`next build failed with exit code ${code}`);
}
