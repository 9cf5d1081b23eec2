import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root, whatever the working directory (npm -w runs scripts inside the package). */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const WEB_DIR = resolve(ROOT, "apps/web");
