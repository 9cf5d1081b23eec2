// The API as the dashboard reaches it: real HTTP, sessions from better-auth cookies, the tRPC fetch
// handler with createContext, superjson on the wire.
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import { createAuth, sessionFromHeaders } from "@kiln/auth";
import { fetchRequestHandler } from "@trpc/server/adapters/fetch";
import superjson from "superjson";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApiDeps, createContext } from "./context.ts";
import { appRouter } from "./root.ts";
import { createHarness, type Harness } from "./testing/harness.ts";

/** Node's request as a fetch Request, and a fetch Response written back: what Next.js does for us. */
function bridge(handle: (request: Request) => Promise<Response>) {
  return async (req: IncomingMessage, res: ServerResponse) => {
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) if (typeof value === "string") headers.set(name, value);
    const hasBody = req.method !== "GET" && req.method !== "HEAD";
    const request = new Request(`http://${req.headers.host}${req.url}`, {
      method: req.method,
      headers,
      ...(hasBody ? { body: Readable.toWeb(req) as ReadableStream, duplex: "half" } : {}),
    } as RequestInit);
    const response = await handle(request);
    res.statusCode = response.status;
    response.headers.forEach((value, name) => {
      if (name !== "set-cookie") res.setHeader(name, value);
    });
    const cookies = response.headers.getSetCookie();
    if (cookies.length > 0) res.setHeader("set-cookie", cookies);
    res.end(Buffer.from(await response.arrayBuffer()));
  };
}

describe("tRPC over HTTP with better-auth sessions", () => {
  let h: Harness;
  let server: Server;
  let base: string;

  beforeAll(async () => {
    h = await createHarness();
    server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const auth = createAuth({ ...h.deps, baseURL: base, secret: randomBytes(32).toString("hex") });
    const deps: ApiDeps = { ...h.deps, getSession: (headers) => sessionFromHeaders(auth, headers) };
    const trpc = (request: Request) =>
      fetchRequestHandler({
        endpoint: "/api/trpc",
        req: request,
        router: appRouter,
        createContext: () => createContext(deps, request),
      });
    server.on(
      "request",
      bridge((request) =>
        new URL(request.url).pathname.startsWith("/api/auth") ? auth.handler(request) : trpc(request),
      ),
    );
  });
  afterAll(async () => {
    await new Promise((resolve) => server?.close(resolve));
    await h?.close();
  });

  const headersWith = (cookie?: string) => ({
    "content-type": "application/json",
    origin: base,
    "x-forwarded-for": "192.0.2.44",
    ...(cookie ? { cookie } : {}),
  });
  async function query(path: string, cookie?: string) {
    const response = await fetch(`${base}/api/trpc/${path}`, { headers: headersWith(cookie) });
    const body = (await response.json()) as { result?: { data: unknown }; error?: { json: { message: string } } };
    return {
      status: response.status,
      data: body.result ? superjson.deserialize(body.result.data as never) : body.error?.json,
    };
  }
  async function mutate(path: string, input: unknown, cookie?: string) {
    const response = await fetch(`${base}/api/trpc/${path}`, {
      method: "POST",
      headers: headersWith(cookie),
      body: JSON.stringify(superjson.serialize(input)),
    });
    const body = (await response.json()) as { result?: { data: unknown }; error?: { json: { message: string } } };
    return {
      status: response.status,
      data: body.result ? superjson.deserialize(body.result.data as never) : body.error?.json,
    };
  }

  it("signs up, creates an organization, and acts in it with the session cookie alone", async () => {
    expect((await query("me.get")).status).toBe(401);
    const signUp = await fetch(`${base}/api/auth/sign-up/email`, {
      method: "POST",
      headers: headersWith(),
      body: JSON.stringify({
        email: `http-${randomBytes(3).toString("hex")}@example.com`,
        password: "correct horse 42",
        name: "Hedy",
      }),
    });
    expect(signUp.status).toBe(200);
    const cookie = signUp.headers
      .getSetCookie()
      .map((c) => c.split(";")[0])
      .join("; ");

    expect(await query("me.get", cookie)).toMatchObject({
      status: 200,
      data: { user: { name: "Hedy" }, activeOrg: null },
    });
    const created = await mutate("orgs.create", { name: "Hedy Labs" }, cookie);
    expect(created).toMatchObject({ status: 200, data: { name: "Hedy Labs" } });
    const orgId = (created.data as { id: string }).id;
    // orgs.create made it the session's active organization: no header needed from here on.
    expect(await query("me.get", cookie)).toMatchObject({ data: { activeOrg: { id: orgId, role: "owner" } } });

    const key = await mutate("apiKeys.create", { name: "ci", scopes: ["inference"] }, cookie);
    expect((key.data as { key: string }).key).toMatch(/^kiln_live_/);
    const audit = await query(
      `auditLog.list?input=${encodeURIComponent(JSON.stringify(superjson.serialize({})))}`,
      cookie,
    );
    const items = (audit.data as { items: { action: string; ip: string; createdAt: Date }[] }).items;
    expect(items.map((i) => i.action)).toEqual(["apiKeys.create", "orgs.create"]);
    expect(items[0]?.ip).toBe("192.0.2.44");
    expect(items[0]?.createdAt).toBeInstanceOf(Date);

    const bad = await mutate("apiKeys.create", { name: "", scopes: [] }, cookie);
    expect(bad.status).toBe(400);
  });
});
