// SSRF guard for async-prediction webhooks: a customer-supplied URL must not make the platform call
// its own private network (metadata services, Redis, Postgres, the workers' serving endpoints).
// Checked when the prediction is created (the URL's literal address or every address its name
// resolves to) and again on every delivery, at connect time, so a name re-pointed to a private
// address after the check (DNS rebinding) is refused too. `allowPrivate` (KILN_WEBHOOK_ALLOW_PRIVATE)
// turns the guard off for tests and single-host development.
import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { BlockList, isIP, type LookupFunction } from "node:net";
import { badRequest } from "../errors.ts";

const blocked = new BlockList();
for (const [network, prefix] of [
  ["0.0.0.0", 8], // "this" network
  ["10.0.0.0", 8], // private
  ["100.64.0.0", 10], // carrier-grade NAT
  ["127.0.0.0", 8], // loopback
  ["169.254.0.0", 16], // link-local (cloud metadata services)
  ["172.16.0.0", 12], // private
  ["192.0.0.0", 24], // IETF protocol assignments
  ["192.0.2.0", 24], // documentation
  ["192.168.0.0", 16], // private
  ["198.18.0.0", 15], // benchmarking
  ["198.51.100.0", 24], // documentation
  ["203.0.113.0", 24], // documentation
  ["224.0.0.0", 4], // multicast
  ["240.0.0.0", 4], // reserved and broadcast
] as const) {
  blocked.addSubnet(network, prefix, "ipv4");
}
for (const [network, prefix] of [
  ["::", 128], // unspecified
  ["::1", 128], // loopback
  ["fc00::", 7], // unique local
  ["fe80::", 10], // link-local
  ["fec0::", 10], // site-local (deprecated)
  ["ff00::", 8], // multicast
  ["2001:db8::", 32], // documentation
] as const) {
  blocked.addSubnet(network, prefix, "ipv6");
}

/** The IPv4 address inside an IPv4-mapped, IPv4-compatible or NAT64 IPv6 address, if any. */
function embeddedIpv4(address: string): string | undefined {
  const lower = address.toLowerCase();
  const dotted = /^(?:::ffff:(?:0:)?|::|64:ff9b::)(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  if (dotted) return dotted[1];
  const hex = /^(?:::ffff:(?:0:)?|64:ff9b::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(lower);
  if (hex) {
    const hi = Number.parseInt(hex[1] as string, 16);
    const lo = Number.parseInt(hex[2] as string, 16);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return undefined;
}

/** Whether an IP address is private, loopback, link-local or otherwise not a public unicast address. */
export function isPrivateAddress(address: string): boolean {
  const bare = address.startsWith("[") && address.endsWith("]") ? address.slice(1, -1) : address;
  const family = isIP(bare);
  if (family === 4) return blocked.check(bare, "ipv4");
  if (family === 6) {
    const v4 = embeddedIpv4(bare);
    if (v4 !== undefined) return blocked.check(v4, "ipv4");
    return blocked.check(bare, "ipv6");
  }
  return true; // not an address at all: refuse rather than guess
}

export interface WebhookUrlPolicy {
  /** KILN_WEBHOOK_ALLOW_PRIVATE: private, loopback and link-local targets allowed. */
  allowPrivate: boolean;
  /** Name resolution (tests inject one); default: the system resolver, every address. */
  resolve?: (hostname: string) => Promise<string[]>;
}

const systemResolve = (hostname: string) =>
  new Promise<string[]>((resolve, reject) =>
    dnsLookup(hostname, { all: true, verbatim: true }, (error, addresses: LookupAddress[]) =>
      error ? reject(error) : resolve(addresses.map((a) => a.address)),
    ),
  );

const hostOf = (url: URL) =>
  url.hostname.startsWith("[") && url.hostname.endsWith("]") ? url.hostname.slice(1, -1) : url.hostname;

/**
 * Validates a webhook URL for an async prediction: http(s) only, and (unless the policy allows
 * private targets) its address, or every address its name resolves to, public. Returns the URL
 * normalized; throws a 400 saying what is wrong.
 */
export async function checkWebhookUrl(raw: unknown, policy: WebhookUrlPolicy): Promise<string> {
  const url = typeof raw === "string" && URL.canParse(raw) ? new URL(raw) : null;
  if (!url || (url.protocol !== "https:" && url.protocol !== "http:")) {
    throw badRequest('"webhook" must be an http(s) URL');
  }
  if (policy.allowPrivate) return url.toString();
  const host = hostOf(url);
  if (isIP(host) !== 0) {
    if (isPrivateAddress(host)) throw badRequest(`"webhook" must not point at a private or loopback address (${host})`);
    return url.toString();
  }
  let addresses: string[];
  try {
    addresses = await (policy.resolve ?? systemResolve)(host);
  } catch (error) {
    throw badRequest(`"webhook" host ${host} does not resolve: ${(error as Error).message}`);
  }
  if (addresses.length === 0) throw badRequest(`"webhook" host ${host} does not resolve`);
  const bad = addresses.find(isPrivateAddress);
  if (bad !== undefined) {
    throw badRequest(`"webhook" host ${host} resolves to a private or loopback address (${bad})`);
  }
  return url.toString();
}

/** The error a delivery fails with when the target turned out to be private. */
export class WebhookTargetRefusedError extends Error {}

/**
 * A `lookup` for http(s).request that refuses private addresses at connect time (after DNS,
 * immediately before the socket connects), so a delivery cannot be re-pointed by DNS after
 * `checkWebhookUrl`. Literal IP hosts never reach a lookup: check them with `isPrivateAddress`.
 */
export function guardedLookup(): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (error, addresses: LookupAddress[]) => {
      if (error) return callback(error, "", 0);
      const bad = addresses.find((a) => isPrivateAddress(a.address));
      if (bad) {
        return callback(
          new WebhookTargetRefusedError(`webhook host ${hostname} resolves to a private address (${bad.address})`),
          "",
          0,
        );
      }
      if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
      const first = addresses[0];
      if (!first) return callback(new Error(`webhook host ${hostname} does not resolve`), "", 0);
      callback(null, first.address, first.family);
    });
  };
}

/**
 * POSTs a webhook body and resolves with the response status. Without `allowPrivate`, a literal
 * private address is refused before connecting and a name is resolved through `guardedLookup`.
 */
export function postWebhook(
  target: string,
  headers: Record<string, string>,
  body: string,
  options: { timeoutMs: number; allowPrivate: boolean },
): Promise<number> {
  const url = new URL(target);
  const host = hostOf(url);
  if (!options.allowPrivate && isIP(host) !== 0 && isPrivateAddress(host)) {
    return Promise.reject(new WebhookTargetRefusedError(`webhook address ${host} is private`));
  }
  const send = url.protocol === "https:" ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(
      url,
      {
        method: "POST",
        headers: { ...headers, "content-length": String(Buffer.byteLength(body)) },
        timeout: options.timeoutMs,
        ...(options.allowPrivate ? {} : { lookup: guardedLookup() }),
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`webhook did not answer within ${options.timeoutMs} ms`)));
    req.on("error", reject);
    req.end(body);
  });
}
