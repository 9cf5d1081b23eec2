import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger } from "./index.ts";

function capture() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  return { lines, stream };
}

describe("createLogger", () => {
  it("writes one JSON object per line with service, level label and ISO time", () => {
    const { lines, stream } = capture();
    createLogger({ service: "gateway", destination: stream }).info({ port: 8080 }, "listening");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ service: "gateway", level: "info", port: 8080, msg: "listening" });
    expect(String(lines[0]?.time)).toMatch(/^\d{4}-\d\d-\d\dT/);
  });

  it("honours the level and redacts credentials", () => {
    const { lines, stream } = capture();
    const log = createLogger({ service: "web", level: "warn", destination: stream });
    log.info("dropped");
    log.warn({ req: { headers: { authorization: "Bearer kiln_live_secret" } } }, "kept");
    expect(lines).toHaveLength(1);
    expect(JSON.stringify(lines[0])).not.toContain("kiln_live_secret");
  });
});
