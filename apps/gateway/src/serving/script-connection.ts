// A Redis connection of the gateway's own for the two scripts every inference runs (admission and
// metering). ioredis builds a Command object, a promise wrapper and a RESP string argument by
// argument for each call, which cost about a tenth of the gateway's CPU per inference; this writes
// each call as one RESP string and reads the replies with a small parser. What it keeps from the
// ioredis connection it replaces: commands fail at once while disconnected (never queued), it
// reconnects with the same backoff, scripts go by EVALSHA (EVAL once after NOSCRIPT), and every
// command of one event-loop turn leaves in one socket write (the socket is corked until the turn's
// check phase). Anything else the gateway does with Redis stays on ioredis.
import { createHash } from "node:crypto";
import { connect as connectTcp, type Socket } from "node:net";
import { connect as connectTls } from "node:tls";

export interface RedisScript {
  lua: string;
  sha: string;
  numberOfKeys: number;
}

export const defineScript = (lua: string, numberOfKeys: number): RedisScript => ({
  lua,
  sha: createHash("sha1").update(lua).digest("hex"),
  numberOfKeys,
});

export type RespValue = string | number | null | RespValue[];

/** An error reply (`-ERR …`), as the command's rejection. */
export class RedisReplyError extends Error {}

type Pending = {
  resolve: (value: RespValue) => void;
  reject: (error: Error) => void;
  /** The call, kept to resend it as EVAL when Redis does not know the script. */
  script?: RedisScript;
  args?: (string | number)[];
};

/** One RESP command as one string (arguments are short: keys, ids and numbers). */
export function encodeCommand(parts: (string | number)[]): string {
  let out = `*${parts.length}\r\n`;
  for (const part of parts) {
    const s = typeof part === "string" ? part : String(part);
    out += `$${Buffer.byteLength(s)}\r\n${s}\r\n`;
  }
  return out;
}

/**
 * Reads whole RESP2 replies from a byte stream (replies may span chunks). Bulk strings are read
 * as UTF-8, integers as numbers, error replies become RedisReplyError values.
 */
export class ReplyParser {
  #buffer: Buffer | undefined;

  constructor(private readonly onReply: (value: RespValue | RedisReplyError) => void) {}

  push(chunk: Buffer): void {
    const data = this.#buffer ? Buffer.concat([this.#buffer, chunk]) : chunk;
    let offset = 0;
    for (;;) {
      const parsed = parseValue(data, offset);
      if (!parsed) break;
      offset = parsed.end;
      this.onReply(parsed.value);
    }
    this.#buffer = offset < data.byteLength ? data.subarray(offset) : undefined;
  }
}

/** The value starting at `offset`, or undefined when it is not all there yet. */
function parseValue(data: Buffer, offset: number): { value: RespValue | RedisReplyError; end: number } | undefined {
  const lineEnd = data.indexOf("\r\n", offset);
  if (lineEnd < 0) return undefined;
  const type = data[offset];
  const line = data.toString("utf8", offset + 1, lineEnd);
  const next = lineEnd + 2;
  switch (type) {
    case 0x2b: // + simple string
      return { value: line, end: next };
    case 0x2d: // - error
      return { value: new RedisReplyError(line), end: next };
    case 0x3a: // : integer
      return { value: Number(line), end: next };
    case 0x24: {
      // $ bulk string
      const length = Number(line);
      if (length < 0) return { value: null, end: next };
      if (data.byteLength < next + length + 2) return undefined;
      return { value: data.toString("utf8", next, next + length), end: next + length + 2 };
    }
    case 0x2a: {
      // * array
      const count = Number(line);
      if (count < 0) return { value: null, end: next };
      const items: RespValue[] = [];
      let end = next;
      for (let i = 0; i < count; i++) {
        const item = parseValue(data, end);
        if (!item) return undefined;
        // An error inside an array (a script's pcall) is kept as its message.
        items.push(item.value instanceof RedisReplyError ? item.value.message : item.value);
        end = item.end;
      }
      return { value: items, end };
    }
    default:
      throw new Error(`unexpected RESP reply type ${String.fromCharCode(type ?? 0)}`);
  }
}

export class ScriptConnection {
  readonly #pending: Pending[] = [];
  #socket: Socket | undefined;
  #isReady = false;
  #isCorked = false;
  #isClosed = false;
  #attempt = 0;
  #reconnect: NodeJS.Timeout | undefined;
  readonly #url: URL;
  readonly #waiting: { resolve: () => void; reject: (error: Error) => void }[] = [];
  /** Set by close() while it waits for the last replies. */
  #drained: (() => void) | undefined;

  constructor(
    url: string,
    private readonly onError: (error: Error) => void,
  ) {
    this.#url = new URL(url);
    this.#connect();
  }

  get isReady(): boolean {
    return this.#isReady;
  }

  /** Runs a script; rejects at once while the connection is down (nothing is queued for later). */
  run(script: RedisScript, args: (string | number)[]): Promise<RespValue> {
    if (!this.#isReady || !this.#socket) {
      return Promise.reject(new Error("Redis connection for admission is not ready"));
    }
    return new Promise((resolve, reject) => {
      this.#pending.push({ resolve, reject, script, args });
      this.#write(encodeCommand(["EVALSHA", script.sha, script.numberOfKeys, ...args]));
    });
  }

  /** Resolves once connected (at once if it is); rejects if this attempt fails. */
  whenReady(): Promise<void> {
    if (this.#isReady) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.#waiting.push({ resolve, reject });
    });
  }

  /** Closes once Redis has answered every command already sent (their promises settle first). */
  async close(): Promise<void> {
    this.#isClosed = true;
    clearTimeout(this.#reconnect);
    const socket = this.#socket;
    if (!socket) return;
    // Not end() at once: a command answered NOSCRIPT is sent again.
    if (this.#pending.length > 0) await new Promise<void>((resolve) => (this.#drained = resolve));
    await new Promise((resolve) => {
      socket.once("close", resolve);
      socket.end();
    });
  }

  #connect(): void {
    const url = this.#url;
    const port = Number(url.port || 6379);
    const host = url.hostname.replace(/^\[|\]$/g, "");
    const socket =
      url.protocol === "rediss:" ? connectTls({ host, port, servername: host }) : connectTcp({ host, port });
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.once(url.protocol === "rediss:" ? "secureConnect" : "connect", () => {
      // AUTH and SELECT go first; their replies are read in order like any other.
      const password = decodeURIComponent(url.password);
      const username = decodeURIComponent(url.username);
      if (password) this.#internal(username ? ["AUTH", username, password] : ["AUTH", password]);
      const db = Number(url.pathname.slice(1) || 0);
      if (db > 0) this.#internal(["SELECT", db]);
      this.#isReady = true;
      this.#attempt = 0;
      for (const w of this.#waiting.splice(0)) w.resolve();
    });
    const parser = new ReplyParser((reply) => this.#onReply(reply));
    socket.on("data", (chunk: Buffer) => {
      try {
        parser.push(chunk);
      } catch (error) {
        socket.destroy(error as Error);
      }
    });
    socket.on("error", (error) => this.onError(error));
    socket.on("close", () => {
      this.#isReady = false;
      this.#isCorked = false;
      this.#socket = undefined;
      const lost = new Error("Redis connection for admission closed");
      for (const p of this.#pending.splice(0)) p.reject(lost);
      for (const w of this.#waiting.splice(0)) w.reject(lost);
      this.#drained?.();
      if (this.#isClosed) return;
      this.#attempt++;
      this.#reconnect = setTimeout(() => this.#connect(), Math.min(this.#attempt * 200, 2_000));
    });
  }

  /** A connection command whose failure closes the connection (a bad password, say). */
  #internal(parts: (string | number)[]): void {
    this.#pending.push({
      resolve: () => {},
      reject: (error) => {
        this.onError(error);
        this.#socket?.destroy();
      },
    });
    this.#write(encodeCommand(parts));
  }

  #onReply(reply: RespValue | RedisReplyError): void {
    const p = this.#pending.shift();
    if (!p) return;
    if (!(reply instanceof RedisReplyError)) p.resolve(reply);
    else if (p.script && p.args && reply.message.startsWith("NOSCRIPT")) {
      // Redis restarted or its script cache was flushed: EVAL loads the script for the next calls.
      this.#pending.push({ resolve: p.resolve, reject: p.reject });
      this.#write(encodeCommand(["EVAL", p.script.lua, p.script.numberOfKeys, ...p.args]));
    } else p.reject(reply);
    if (this.#pending.length === 0) this.#drained?.();
  }

  #write(command: string): void {
    const socket = this.#socket as Socket;
    if (!this.#isCorked) {
      this.#isCorked = true;
      socket.cork();
      setImmediate(this.#uncork);
    }
    socket.write(command);
  }

  readonly #uncork = () => {
    this.#isCorked = false;
    this.#socket?.uncork();
  };
}
