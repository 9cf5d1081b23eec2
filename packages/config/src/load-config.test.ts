import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "./load-config.ts";

const valid = {
  DATABASE_URL: "postgresql://postgres@127.0.0.1:5432/kiln",
  REDIS_URL: "redis://127.0.0.1:6379",
};

function problemsOf(env: Record<string, string | undefined>) {
  try {
    loadConfig(env, "/srv/kiln");
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error("expected loadConfig to throw");
}

describe("loadConfig", () => {
  it("applies documented defaults", () => {
    const config = loadConfig(valid, "/srv/kiln");
    expect(config.GATEWAY_PORT).toBe(8080);
    expect(config.WEB_PORT).toBe(3000);
    expect(config.LOG_LEVEL).toBe("info");
    expect(config.WORKER_TARGET).toBe("cpu");
    expect(config.dataDir).toBe("/srv/kiln/.kiln");
    expect(config.artifactDir).toBe("/srv/kiln/.kiln/artifacts");
  });

  it("coerces numbers and keeps absolute paths", () => {
    const config = loadConfig({ ...valid, GATEWAY_PORT: "0", KILN_DATA_DIR: "/var/lib/kiln" }, "/srv");
    expect(config.GATEWAY_PORT).toBe(0);
    expect(config.dataDir).toBe("/var/lib/kiln");
  });

  it("reads the gateway -> worker Unix socket switch, on by default, and rejects other words", () => {
    expect(loadConfig(valid, "/srv").SERVING_UNIX_SOCKET).toBe(true);
    expect(loadConfig({ ...valid, SERVING_UNIX_SOCKET: "0" }, "/srv").SERVING_UNIX_SOCKET).toBe(false);
    expect(
      loadConfig({ ...valid, SERVING_UNIX_SOCKET: "false", SERVING_SOCKET_DIR: "/run/kiln" }, "/srv"),
    ).toMatchObject({
      SERVING_UNIX_SOCKET: false,
      SERVING_SOCKET_DIR: "/run/kiln",
    });
    expect(problemsOf({ ...valid, SERVING_UNIX_SOCKET: "yes" })).toEqual([
      expect.objectContaining({ variable: "SERVING_UNIX_SOCKET" }),
    ]);
  });

  it("names every missing required variable", () => {
    const problems = problemsOf({});
    expect(problems).toEqual(
      expect.arrayContaining([
        { variable: "DATABASE_URL", message: "is required but not set" },
        { variable: "REDIS_URL", message: "is required but not set" },
      ]),
    );
  });

  it("treats an empty value as unset", () => {
    expect(problemsOf({ ...valid, REDIS_URL: "" })).toEqual([
      { variable: "REDIS_URL", message: "is required but not set" },
    ]);
  });

  it("says what is wrong with a malformed value", () => {
    const problems = problemsOf({ ...valid, REDIS_URL: "http://localhost:6379", GATEWAY_PORT: "80000" });
    expect(problems.map((p) => p.variable).sort()).toEqual(["GATEWAY_PORT", "REDIS_URL"]);
    expect(problems.find((p) => p.variable === "REDIS_URL")?.message).toMatch(/redis:\/\//);
  });

  it("rejects an unknown worker target and log level", () => {
    const problems = problemsOf({ ...valid, WORKER_TARGET: "tpu", LOG_LEVEL: "loud" });
    expect(problems.map((p) => p.variable).sort()).toEqual(["LOG_LEVEL", "WORKER_TARGET"]);
  });

  it("requires a bucket for the s3 artifact store", () => {
    expect(problemsOf({ ...valid, ARTIFACT_STORE: "s3" })).toEqual([
      { variable: "S3_BUCKET", message: "is required when ARTIFACT_STORE=s3" },
    ]);
  });

  it("puts the variable name in the error message", () => {
    expect(() => loadConfig({ ...valid, DATABASE_URL: "mysql://x" })).toThrow(/DATABASE_URL: .*postgres/);
  });
});
