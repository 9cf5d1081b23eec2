// Which requests the inference fast path takes (everything else must reach Fastify untouched),
// and how it answers errors. The answers themselves are compared with Fastify's in
// infer-fast-path.integration.test.ts.
import { createServer, type Server } from "node:http";
import { type AddressInfo, connect } from "node:net";
import { ServingError } from "@kiln/serving";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServingContext } from "../serving/serving-context.ts";
import { inferFastPath } from "./infer-fast-path.ts";

let server: Server;
let base: string;
let closing = false;
let failure: Error = new ServingError("UNAUTHENTICATED", "API key is not valid");
const logged: unknown[] = [];
/** The Authorization value each request reached the key check with. */
const presented: (string | undefined)[] = [];

beforeAll(async () => {
  // A context whose key check fails: enough to see the fast path answer without a real stack.
  const ctx = {
    authenticate: async (authorization: string | undefined) => {
      presented.push(authorization);
      throw failure;
    },
  } as unknown as ServingContext;
  const logger = { error: (obj: unknown) => logged.push(obj) } as never;
  const fast = inferFastPath(() => ctx, { logger, isClosing: () => closing });
  server = createServer((req, res) => {
    if (fast(req, res)) return;
    // Stands in for Fastify.
    req.resume();
    res.writeHead(599).end("fastify");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise((resolve) => server.close(resolve)));

const post = (path: string, init: RequestInit = {}) =>
  fetch(`${base}${path}`, {
    method: "POST",
    body: "{}",
    ...init,
    headers: { "content-type": "application/json", ...init.headers },
  });

describe("inference fast path", () => {
  it("takes plain inference requests, with or without a version, JSON or binary or no content type", async () => {
    for (const path of ["/v2/models/dense/infer", "/v2/models/my-model.v2/versions/3/infer"]) {
      const res = await post(path);
      expect(res.status).toBe(401);
      expect(res.headers.get("content-type")).toBe("application/json; charset=utf-8");
      expect(res.headers.get("access-control-allow-origin")).toBe("*");
      expect(await res.json()).toEqual({ error: "API key is not valid" });
    }
    expect(
      (await post("/v2/models/dense/infer", { headers: { "content-type": "application/octet-stream" } })).status,
    ).toBe(401);
    const untyped = await fetch(`${base}/v2/models/dense/infer`, { method: "POST" });
    expect(untyped.status).toBe(401);
  });

  it("leaves everything else to Fastify", async () => {
    const elsewhere = [
      () => fetch(`${base}/v2/models/dense/infer`),
      () => post("/v2/models/dense"),
      () => post("/v2/models/dense/infer?x=1"),
      () => post("/v2/models/dense/infer/"),
      () => post("/v2/models/de%20nse/infer"),
      () => post(`/v2/models/${"a".repeat(101)}/infer`),
      () => post("/v2/models/dense/infer", { headers: { "content-type": "text/plain" } }),
      () => post("/v2/models/dense/infer", { headers: { "content-type": "application/json;charset=utf-8" } }),
      // A streamed body (chunked): Fastify enforces the body limit as it arrives.
      () =>
        post("/v2/models/dense/infer", {
          body: new ReadableStream({
            start(c) {
              c.enqueue(new TextEncoder().encode("{}"));
              c.close();
            },
          }),
          duplex: "half",
        } as RequestInit),
    ];
    for (const send of elsewhere) expect((await send()).status).toBe(599);
  });

  it("reads headers whatever their case, and duplicates as Node does", async () => {
    /** One raw HTTP/1.1 request (header names spelled as given); the answer's status. */
    const raw = (head: string[], body = "{}") =>
      new Promise<number>((resolve, reject) => {
        const { port } = server.address() as AddressInfo;
        const socket = connect(port, "127.0.0.1", () =>
          socket.write(`POST /v2/models/dense/infer HTTP/1.1\r\nHost: x\r\n${head.join("\r\n")}\r\n\r\n${body}`),
        );
        let answer = "";
        socket.on("data", (d) => {
          answer += d;
          if (answer.includes("\r\n\r\n")) {
            resolve(Number(answer.slice(9, 12)));
            socket.destroy();
          }
        });
        socket.on("error", reject);
      });
    presented.length = 0;
    expect(
      await raw([
        "AUTHORIZATION: Bearer one",
        "Authorization: Bearer two",
        "Content-Type: application/json",
        "CONTENT-LENGTH: 2",
      ]),
    ).toBe(401);
    expect(presented).toEqual(["Bearer one"]);
    // An unusual content type in any case goes to Fastify, and so does a chunked body.
    expect(await raw(["Content-Type: Text/Plain", "Content-Length: 2"])).toBe(599);
    expect(await raw(["Transfer-Encoding: chunked", "Content-Type: application/json"], "2\r\n{}\r\n0\r\n\r\n")).toBe(
      599,
    );
    expect(await raw(["content-length: 99999999999"])).toBe(599);
  });

  it("leaves requests to Fastify while the gateway closes (its 503)", async () => {
    closing = true;
    try {
      expect((await post("/v2/models/dense/infer")).status).toBe(599);
    } finally {
      closing = false;
    }
  });

  it("answers Retry-After with a serving error that has one, and 500 for anything else (logged)", async () => {
    failure = new ServingError("RATE_LIMITED", "slow down", 3);
    const limited = await post("/v2/models/dense/infer");
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBe("3");
    expect(await limited.json()).toEqual({ error: "slow down" });

    failure = new Error("boom");
    const broken = await post("/v2/models/dense/infer");
    expect(broken.status).toBe(500);
    expect(await broken.json()).toEqual({ error: "internal error" });
    expect(logged).toEqual([{ err: failure }]);
  });
});
