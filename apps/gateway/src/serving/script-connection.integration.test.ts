// The admission scripts' Redis connection against a real Redis: replies of every shape, in order,
// split across reads; NOSCRIPT answered by EVAL; error replies; failing fast while disconnected.
import { randomBytes } from "node:crypto";
import { createServer, Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  defineScript,
  encodeCommand,
  RedisReplyError,
  ReplyParser,
  type RespValue,
  RespWriter,
  ScriptConnection,
} from "./script-connection.ts";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const errors: Error[] = [];
let conn: ScriptConnection;

beforeAll(async () => {
  conn = new ScriptConnection(REDIS_URL, (error) => errors.push(error));
  await conn.whenReady();
});
afterAll(async () => {
  await conn?.close();
});

// A script Redis has never seen (so its first EVALSHA answers NOSCRIPT).
const fresh = (body: string, keys = 0) => defineScript(`-- ${randomBytes(8).toString("hex")}\n${body}`, keys);

describe("RESP replies", () => {
  it("are read whole however the bytes are split", () => {
    const wire = Buffer.from(
      ":42\r\n+OK\r\n$4\r\nhé!\r\n$-1\r\n*3\r\n:1\r\n$2\r\nab\r\n*1\r\n:-7\r\n-ERR nope\r\n*0\r\n",
      "utf8",
    );
    for (let split = 1; split < wire.byteLength; split++) {
      const replies: (RespValue | RedisReplyError)[] = [];
      const parser = new ReplyParser((r) => replies.push(r));
      parser.push(wire.subarray(0, split));
      parser.push(wire.subarray(split));
      expect(replies.slice(0, 5)).toEqual([42, "OK", "hé!", null, [1, "ab", [-7]]]);
      expect(replies[5]).toBeInstanceOf(RedisReplyError);
      expect((replies[5] as Error).message).toBe("ERR nope");
      expect(replies[6]).toEqual([]);
    }
  });

  it("commands are written with byte lengths", () => {
    expect(encodeCommand(["EVALSHA", "é", 2])).toBe("*3\r\n$7\r\nEVALSHA\r\n$2\r\né\r\n$1\r\n2\r\n");
  });

  it("the buffer writer encodes exactly what encodeCommand does", () => {
    const commands: (string | number)[][] = [
      ["EVALSHA", "é", 2],
      ["SET", "", 0, 9, 10, 99, 100, 123456789, 2 ** 53 - 1, -1, -123, 0.5, 1e-7, 1e21, 3.25, Number.NaN],
      ["k".repeat(64), "k".repeat(65), "ü".repeat(40), `${"a".repeat(70)}€`, "kiln:quota:org_01:202612:requests"],
    ];
    const writer = new RespWriter();
    for (const parts of commands) {
      writer.array(parts.length);
      for (const part of parts) writer.bulk(part);
    }
    expect(writer.take().toString("utf8")).toBe(commands.map(encodeCommand).join(""));
    // It starts over after take(), and grows past its first buffer.
    const many = Array.from({ length: 3000 }, (_, i) => `argument-${i}`);
    writer.array(many.length);
    for (const part of many) writer.bulk(part);
    expect(writer.take().toString("utf8")).toBe(encodeCommand(many));
  });
});

describe("ScriptConnection", () => {
  it("runs scripts by EVALSHA, loading them with EVAL after NOSCRIPT, and answers in order", async () => {
    const key = `test:script-connection:${randomBytes(4).toString("hex")}`;
    const incr = fresh("return {redis.call('INCRBY', KEYS[1], ARGV[1]), ARGV[2]}", 1);
    // One event-loop turn: the first three are NOSCRIPT and resent, the answers still come in order.
    const answers = await Promise.all([1, 2, 3].map((n) => conn.run(incr, [key, n, `call ${n}`])));
    expect(answers).toEqual([
      [1, "call 1"],
      [3, "call 2"],
      [6, "call 3"],
    ]);
    // Loaded now: EVALSHA answers directly.
    expect(await conn.run(incr, [key, 10, "again"])).toEqual([16, "again"]);
    expect(await conn.run(fresh("return redis.call('DEL', KEYS[1])", 1), [key])).toBe(1);
  });

  it("writes each event-loop turn's commands in one socket write", async () => {
    const own = new ScriptConnection(REDIS_URL, (error) => errors.push(error));
    await own.whenReady();
    const echo = defineScript("return ARGV[1]", 0);
    await own.run(echo, ["load"]);
    // Every socket write of this process, by content (only `own` sends these arguments).
    const writes: string[] = [];
    const write = Socket.prototype.write;
    Socket.prototype.write = function (this: Socket, ...args: Parameters<Socket["write"]>) {
      const text = String(args[0]);
      if (text.includes("EVALSHA")) writes.push(text);
      return write.apply(this, args);
    } as Socket["write"];
    try {
      const turn = [own.run(echo, ["first"]), own.run(echo, ["second"]), own.run(echo, ["third"])];
      expect(writes).toHaveLength(0);
      expect(await Promise.all(turn)).toEqual(["first", "second", "third"]);
      expect(writes).toHaveLength(1);
      expect(writes[0]).toMatch(/first[\s\S]*second[\s\S]*third/);
    } finally {
      Socket.prototype.write = write;
      await own.close();
    }
  });

  it("rejects a script's error reply without disturbing the next commands", async () => {
    const failing = fresh("return redis.error_reply('quota script failed')");
    const ok = fresh("return 'fine'");
    const [failed, fine] = await Promise.allSettled([conn.run(failing, []), conn.run(ok, [])]);
    expect(failed.status).toBe("rejected");
    expect((failed as PromiseRejectedResult).reason).toBeInstanceOf(RedisReplyError);
    expect(fine).toEqual({ status: "fulfilled", value: "fine" });
  });

  it("fails at once while it cannot reach Redis, and says so to its error callback", async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as { port: number };
    await new Promise((resolve) => server.close(resolve));
    const seen: Error[] = [];
    const down = new ScriptConnection(`redis://127.0.0.1:${port}`, (e) => seen.push(e));
    await expect(down.whenReady()).rejects.toThrow();
    await expect(down.run(fresh("return 1"), [])).rejects.toThrow(/not ready/);
    expect(seen.length).toBeGreaterThan(0);
    await down.close();
  });

  it("lets commands already sent finish when it closes", async () => {
    const own = new ScriptConnection(REDIS_URL, (error) => errors.push(error));
    await own.whenReady();
    const pending = own.run(fresh("return 7"), []);
    await own.close();
    expect(await pending).toBe(7);
    expect(errors).toEqual([]);
  });
});
