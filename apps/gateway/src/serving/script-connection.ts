// A Redis connection of the gateway's own for the two scripts every inference runs (admission and
// metering). ioredis builds a Command object, a promise wrapper and a RESP string argument by
// argument for each call, which cost about a tenth of the gateway's CPU per inference; this writes
// each call as one RESP string and reads the replies with a small parser. What it keeps from the
// ioredis connection it replaces: commands fail at once while disconnected (never queued), it
// reconnects with the same backoff, scripts go by EVALSHA (EVAL once after NOSCRIPT), and every
// command of one event-loop turn leaves in one socket write (the turn's commands are joined into
// one string, written in its check phase). Anything else the gateway does with Redis stays on ioredis.
import { createHash } from "node:crypto";
import { connect as connectTcp, type Socket } from "node:net";
import { connect as connectTls } from "node:tls";

export interface RedisScript {
  lua: string;
  sha: string;
  numberOfKeys: number;
  /** `EVALSHA <sha> <numberOfKeys>` as RESP bulk strings (every call of the script starts with them). */
  evalshaHead: Buffer;
}

export const defineScript = (lua: string, numberOfKeys: number): RedisScript => {
  const sha = createHash("sha1").update(lua).digest("hex");
  // encodeCommand's output less its array header: the three bulk strings.
  const head = encodeCommand(["EVALSHA", sha, numberOfKeys]);
  return { lua, sha, numberOfKeys, evalshaHead: Buffer.from(head.slice(head.indexOf("\r\n") + 2)) };
};

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

const CR = 0x0d;
const LF = 0x0a;
/** Strings up to this length are copied byte by byte when ASCII (cheaper than a call into C++). */
const INLINE_ASCII = 64;

/**
 * An event-loop turn's commands, encoded straight into one growing buffer: no string per argument
 * and no socket write per command. `take()` hands out a copy of what was written and starts over.
 */
export class RespWriter {
  #buf = Buffer.allocUnsafe(16 * 1024);
  #len = 0;

  get length(): number {
    return this.#len;
  }

  #room(bytes: number): void {
    if (this.#len + bytes <= this.#buf.byteLength) return;
    const grown = Buffer.allocUnsafe(Math.max(this.#buf.byteLength * 2, this.#len + bytes));
    this.#buf.copy(grown, 0, 0, this.#len);
    this.#buf = grown;
  }

  /** A non-negative integer in decimal, then CRLF (with a one-byte type prefix). */
  #line(type: number, n: number): void {
    this.#room(24);
    const buf = this.#buf;
    buf[this.#len++] = type;
    this.#digits(n);
    buf[this.#len++] = CR;
    buf[this.#len++] = LF;
  }

  #digits(n: number): void {
    const buf = this.#buf;
    if (n < 10) {
      buf[this.#len++] = 0x30 + n;
      return;
    }
    if (n < 100) {
      buf[this.#len++] = 0x30 + ((n / 10) | 0);
      buf[this.#len++] = 0x30 + (n % 10);
      return;
    }
    const digits = String(n);
    for (let i = 0; i < digits.length; i++) buf[this.#len++] = digits.charCodeAt(i);
  }

  /** `*<count>` */
  array(count: number): void {
    this.#line(0x2a, count);
  }

  /** Bytes already encoded (a script's constant EVALSHA head). */
  raw(bytes: Buffer): void {
    this.#room(bytes.byteLength);
    bytes.copy(this.#buf, this.#len);
    this.#len += bytes.byteLength;
  }

  /** One argument as a bulk string. */
  bulk(part: string | number): void {
    const s = typeof part === "string" ? part : String(part);
    const start = this.#len;
    const length = s.length;
    // Optimistically ASCII (keys, ids and numbers are): the length is the string's, and the bytes
    // are copied while checking; a non-ASCII string is written again as UTF-8.
    this.#line(0x24, length);
    this.#room(length + 2);
    const buf = this.#buf;
    let at = this.#len;
    if (length <= INLINE_ASCII) {
      for (let i = 0; i < length; i++) {
        const c = s.charCodeAt(i);
        if (c > 0x7f) {
          this.#utf8(start, s);
          return;
        }
        buf[at++] = c;
      }
    } else {
      for (let i = 0; i < length; i++) {
        if (s.charCodeAt(i) > 0x7f) {
          this.#utf8(start, s);
          return;
        }
      }
      at += buf.write(s, at, length, "latin1");
    }
    buf[at++] = CR;
    buf[at++] = LF;
    this.#len = at;
  }

  /** `s` (not all ASCII) as a bulk string at `start`, over whatever was written there. */
  #utf8(start: number, s: string): void {
    this.#len = start;
    const bytes = Buffer.byteLength(s, "utf8");
    this.#line(0x24, bytes);
    this.#room(bytes + 2);
    this.#len += this.#buf.write(s, this.#len, bytes, "utf8");
    this.#buf[this.#len++] = CR;
    this.#buf[this.#len++] = LF;
  }

  /** A copy of everything written since the last take (sockets may keep it until sent). */
  take(): Buffer {
    const out = Buffer.allocUnsafe(this.#len);
    this.#buf.copy(out, 0, 0, this.#len);
    this.#len = 0;
    return out;
  }

  clear(): void {
    this.#len = 0;
  }
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
  /** Commands not yet written: this event-loop turn's, written together in its check phase. */
  readonly #out = new RespWriter();
  #flushScheduled = false;
  /** Callbacks that run just before this turn's commands are written (see beforeWrite). */
  #beforeWrite: (() => void)[] = [];
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
      const out = this.#out;
      out.array(args.length + 3);
      out.raw(script.evalshaHead);
      for (const arg of args) out.bulk(arg);
      this.#queued();
    });
  }

  /**
   * Runs `fn` once, just before this event-loop turn's commands are written; the commands it runs
   * join that write. For callers that gather a turn's work into one command (RequestAdmission's
   * leases and usage batches).
   */
  beforeWrite(fn: () => void): void {
    this.#beforeWrite.push(fn);
    this.#queued();
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
      this.#out.clear();
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
    this.#write(parts);
  }

  #onReply(reply: RespValue | RedisReplyError): void {
    const p = this.#pending.shift();
    if (!p) return;
    if (!(reply instanceof RedisReplyError)) p.resolve(reply);
    else if (p.script && p.args && reply.message.startsWith("NOSCRIPT")) {
      // Redis restarted or its script cache was flushed: EVAL loads the script for the next calls.
      this.#pending.push({ resolve: p.resolve, reject: p.reject });
      this.#write(["EVAL", p.script.lua, p.script.numberOfKeys, ...p.args]);
    } else p.reject(reply);
    if (this.#pending.length === 0) this.#drained?.();
  }

  /**
   * Queues a command for this event-loop turn's write: the turn's commands are joined into one
   * string and written once in the check phase (setImmediate), one socket write and one syscall
   * however many requests the turn admitted.
   */
  #write(parts: (string | number)[]): void {
    this.#out.array(parts.length);
    for (const part of parts) this.#out.bulk(part);
    this.#queued();
  }

  #queued(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(this.#flushOutgoing);
  }

  readonly #flushOutgoing = () => {
    if (this.#beforeWrite.length > 0) {
      const callbacks = this.#beforeWrite;
      this.#beforeWrite = [];
      for (const fn of callbacks) {
        try {
          fn();
        } catch (error) {
          this.onError(error as Error);
        }
      }
    }
    this.#flushScheduled = false;
    if (this.#out.length === 0) return;
    const bytes = this.#out.take();
    // A connection that closed meanwhile has already failed these commands' promises.
    if (this.#isReady) this.#socket?.write(bytes);
  };
}
