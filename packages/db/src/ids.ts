import { randomBytes } from "node:crypto";

/** The type prefix of every id, so that an id in a log or a URL says what it names. */
export const ID_PREFIXES = {
  user: "usr",
  session: "ses",
  account: "acc",
  verification: "ver",
  organization: "org",
  membership: "mem",
  invitation: "inv",
  apiKey: "key",
  model: "mdl",
  modelVersion: "mver",
  build: "bld",
  deployment: "dep",
  prediction: "prd",
  usageRollup: "use",
  subscription: "sub",
  auditLog: "aud",
  billingNotice: "ntc",
  meterEvent: "mev",
  calibrationSet: "cal",
} as const;

export type IdPrefix = (typeof ID_PREFIXES)[keyof typeof ID_PREFIXES];

// Crockford's base32: no I, L, O or U, so ids survive being read aloud or retyped.
const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const PREFIXES = new Set<string>(Object.values(ID_PREFIXES));

/**
 * A new id such as `org_01JD3R5X8QZ4N2K7M9P0T6V1WB`: the prefix, then a ULID (48 bits of
 * millisecond time, 80 random bits) in Crockford base32. Ids sort by creation time, which keeps
 * B-tree inserts at the right edge of the index and makes "newest first" a plain ORDER BY id.
 */
export function newId(prefix: IdPrefix, now: number = Date.now()): string {
  let time = "";
  let t = now;
  for (let i = 0; i < 10; i++) {
    time = ALPHABET[t % 32] + time;
    t = Math.floor(t / 32);
  }
  const bytes = randomBytes(10);
  let random = "";
  // 80 bits = 16 base32 characters; read them 5 bits at a time.
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      random += ALPHABET[(buffer >> bits) & 31];
    }
    buffer &= (1 << bits) - 1;
  }
  return `${prefix}_${time}${random}`;
}

/** True when `id` is a well-formed id, of the given prefix when one is given. */
export function isId(id: string, prefix?: IdPrefix): boolean {
  const match = /^([a-z]+)_([0-9A-HJKMNP-TV-Z]{26})$/.exec(id);
  if (!match?.[1] || !PREFIXES.has(match[1])) return false;
  return prefix === undefined || match[1] === prefix;
}
