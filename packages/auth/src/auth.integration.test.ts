import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createPrismaClient, type PrismaClient } from "@kiln/db";
import { createTestDatabase, type TestDatabase } from "@kiln/db/testing";
import { toNodeHandler } from "better-auth/node";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Auth, createAuth, sessionFromHeaders } from "./create-auth.ts";

describe("accounts over HTTP", () => {
  let db: TestDatabase;
  let prisma: PrismaClient;
  let redis: Redis;
  let auth: Auth;
  let server: Server;
  let base: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    prisma = createPrismaClient(db.url, { maxConnections: 3 });
    redis = new Redis(process.env.REDIS_URL ?? "");
    server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    auth = createAuth({
      prisma,
      redis,
      redisKeyPrefix: `kiln-test-${randomBytes(4).toString("hex")}:`,
      baseURL: base,
      secret: randomBytes(32).toString("hex"),
      signInLimitPerMinute: 3,
    });
    server.on("request", toNodeHandler(auth));
  });
  afterAll(async () => {
    await new Promise((resolve) => server?.close(resolve));
    await redis?.quit();
    await prisma?.$disconnect();
    await db?.drop();
  });

  const post = (path: string, body: unknown, init: { ip?: string; cookie?: string } = {}) =>
    fetch(`${base}/api/auth${path}`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        origin: base,
        "x-forwarded-for": init.ip ?? "198.51.100.1",
        ...(init.cookie ? { cookie: init.cookie } : {}),
      },
      body: JSON.stringify(body),
    });
  const cookieOf = (response: Response) =>
    response.headers
      .getSetCookie()
      .map((c) => c.split(";")[0])
      .join("; ");
  const email = () => `user-${randomBytes(4).toString("hex")}@example.com`;

  it("refuses a weak password and says which rules it breaks", async () => {
    const response = await post("/sign-up/email", { email: email(), password: "short", name: "Weak" });
    expect(response.status).toBe(400);
    const body = (await response.json()) as { message: string };
    expect(body.message).toBe(
      "Choose a stronger password: Use at least 12 characters (5 so far). Include at least one digit or symbol.",
    );
  });

  it("signs up with an argon2id hash and an httpOnly SameSite=Lax session cookie, then signs out", async () => {
    const address = email();
    const response = await post("/sign-up/email", { email: address, password: "correct horse 42", name: "Ada" });
    expect(response.status).toBe(200);
    const setCookie = response.headers.getSetCookie().find((c) => c.includes("session_token"));
    expect(setCookie).toMatch(/HttpOnly/i);
    expect(setCookie).toMatch(/SameSite=Lax/i);

    const user = await prisma.user.findUniqueOrThrow({ where: { email: address }, include: { accounts: true } });
    expect(user.id).toMatch(/^usr_/);
    expect(user.accounts[0]?.password).toMatch(/^\$argon2id\$/);

    const cookie = cookieOf(response);
    const session = await sessionFromHeaders(auth, new Headers({ cookie }));
    expect(session).toMatchObject({
      user: { id: user.id, email: address, name: "Ada" },
      session: { activeOrganizationId: null },
    });
    expect(session?.session.id).toMatch(/^ses_/);

    // The API's orgs.switch writes the active organization to the session row; the session reports it.
    await prisma.session.update({ where: { id: session?.session.id ?? "" }, data: { activeOrganizationId: "org_x" } });
    expect((await sessionFromHeaders(auth, new Headers({ cookie })))?.session.activeOrganizationId).toBe("org_x");

    expect((await post("/sign-out", {}, { cookie })).status).toBe(200);
    expect(await sessionFromHeaders(auth, new Headers({ cookie }))).toBeNull();
  });

  it("refuses credentials posted from an origin it does not trust (CSRF)", async () => {
    const response = await fetch(`${base}/api/auth/sign-up/email`, {
      method: "POST",
      headers: { "content-type": "application/json", origin: "http://evil.example", "x-forwarded-for": "198.51.100.9" },
      body: JSON.stringify({ email: email(), password: "correct horse 42", name: "Eve" }),
    });
    expect(response.status).toBe(403);
  });

  it("signs in with the right password only, and rate-limits attempts per client address", async () => {
    const address = email();
    await post("/sign-up/email", { email: address, password: "correct horse 42", name: "Bo" }, { ip: "198.51.100.50" });
    const ip = "198.51.100.2";
    const wrong = await post("/sign-in/email", { email: address, password: "wrong password 1" }, { ip });
    expect(wrong.status).toBe(401);
    const right = await post("/sign-in/email", { email: address, password: "correct horse 42" }, { ip });
    expect(right.status).toBe(200);
    expect(await sessionFromHeaders(auth, new Headers({ cookie: cookieOf(right) }))).toMatchObject({
      user: { email: address },
    });

    expect((await post("/sign-in/email", { email: address, password: "wrong password 2" }, { ip })).status).toBe(401);
    const limited = await post("/sign-in/email", { email: address, password: "correct horse 42" }, { ip });
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get("x-retry-after"))).toBeGreaterThan(0);
    // Another address is not affected.
    expect(
      (await post("/sign-in/email", { email: address, password: "correct horse 42" }, { ip: "198.51.100.3" })).status,
    ).toBe(200);
  });
});
