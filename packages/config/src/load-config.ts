import { isAbsolute, resolve } from "node:path";
import { type Env, ZEnv } from "./env.ts";

/** The validated environment plus paths resolved against the working directory. */
export type Config = Env & { dataDir: string; artifactDir: string };

/** Thrown when the environment is missing or malformed; the message lists every bad variable. */
export class ConfigError extends Error {
  readonly code = "CONFIG_INVALID";
  constructor(readonly problems: { variable: string; message: string }[]) {
    super(
      `Invalid configuration:\n${problems.map((p) => `  ${p.variable}: ${p.message}`).join("\n")}\n` +
        "See .env.example for every variable and its meaning.",
    );
    this.name = "ConfigError";
  }
}

type Source = Record<string, string | undefined>;

/**
 * Reads and validates the environment. Call it once at start-up and pass the result down, so a bad
 * setting stops the process before it serves anything rather than failing on first use.
 */
export function loadConfig(source: Source = process.env, cwd = process.cwd()): Config {
  // An empty variable (FOO=) means "unset", which is what people mean when they write it.
  const cleaned = Object.fromEntries(Object.entries(source).filter(([, v]) => v !== undefined && v !== ""));
  const parsed = ZEnv.safeParse(cleaned);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => {
        const variable = String(issue.path[0] ?? "(environment)");
        const missing = issue.code === "invalid_type" && cleaned[variable] === undefined;
        return { variable, message: missing ? "is required but not set" : issue.message };
      }),
    );
  }
  const env = parsed.data;
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(cwd, p));
  const dataDir = abs(env.KILN_DATA_DIR);
  return { ...env, dataDir, artifactDir: abs(env.ARTIFACT_DIR ?? resolve(dataDir, "artifacts")) };
}

/**
 * For a process's main(): the config, or a plain message on stderr and exit code 1. A stack trace
 * would bury the one line that matters (which variable, what is wrong).
 */
export function loadConfigOrExit(service: string, source: Source = process.env): Config {
  try {
    return loadConfig(source);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${service}: ${error.message}\n`);
    process.exit(1);
  }
}
