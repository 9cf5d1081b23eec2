import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { checkWebhookUrl, isPrivateAddress, postWebhook, WebhookTargetRefusedError } from "./webhook-url.ts";

describe("isPrivateAddress", () => {
  it.each([
    "127.0.0.1",
    "127.255.0.9",
    "10.0.0.1",
    "172.16.5.4",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "224.0.0.1",
    "255.255.255.255",
    "::1",
    "::",
    "fe80::1",
    "fd00::1",
    "fc12:3456::1",
    "ff02::1",
    "::ffff:127.0.0.1",
    "::ffff:7f00:1",
    "::ffff:10.0.0.1",
    "64:ff9b::a9fe:a9fe",
    "[::1]",
    "not-an-ip",
  ])("refuses %s", (address) => {
    expect(isPrivateAddress(address)).toBe(true);
  });

  it.each(["8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"])(
    "allows %s",
    (address) => {
      expect(isPrivateAddress(address)).toBe(false);
    },
  );
});

describe("checkWebhookUrl", () => {
  const resolveTo = (addresses: string[]) => async () => addresses;

  it("accepts public http(s) targets and normalizes them", async () => {
    await expect(
      checkWebhookUrl("https://hooks.example.com/a b", { allowPrivate: false, resolve: resolveTo(["93.184.216.34"]) }),
    ).resolves.toBe("https://hooks.example.com/a%20b");
    await expect(checkWebhookUrl("http://8.8.8.8:8080/x", { allowPrivate: false })).resolves.toBe(
      "http://8.8.8.8:8080/x",
    );
  });

  it("refuses private literals, names that resolve to private addresses, and other schemes", async () => {
    const policy = { allowPrivate: false, resolve: resolveTo(["93.184.216.34"]) };
    await expect(checkWebhookUrl("http://127.0.0.1/x", policy)).rejects.toThrow(/private or loopback/);
    await expect(checkWebhookUrl("http://[::1]/x", policy)).rejects.toThrow(/private or loopback/);
    await expect(checkWebhookUrl("http://169.254.169.254/", policy)).rejects.toThrow(/private or loopback/);
    await expect(checkWebhookUrl("ftp://example.com/", policy)).rejects.toThrow(/http\(s\) URL/);
    await expect(checkWebhookUrl(42, policy)).rejects.toThrow(/http\(s\) URL/);
    // One private address among several is enough to refuse (the connection could pick it).
    await expect(
      checkWebhookUrl("https://rebind.example.com/", {
        allowPrivate: false,
        resolve: resolveTo(["93.184.216.34", "10.0.0.7"]),
      }),
    ).rejects.toThrow(/resolves to a private or loopback address \(10\.0\.0\.7\)/);
    await expect(
      checkWebhookUrl("https://nowhere.example.com/", {
        allowPrivate: false,
        resolve: async () => {
          throw new Error("ENOTFOUND");
        },
      }),
    ).rejects.toThrow(/does not resolve/);
  });

  it("allows private targets when the policy says so", async () => {
    await expect(checkWebhookUrl("http://127.0.0.1:9/x", { allowPrivate: true })).resolves.toBe("http://127.0.0.1:9/x");
  });
});

describe("postWebhook", () => {
  it("delivers to loopback only when private targets are allowed, and checks names at connect time", async () => {
    let received = "";
    const server = createServer((req, res) => {
      req.on("data", (c) => (received += c));
      req.on("end", () => res.writeHead(204).end());
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const status = await postWebhook(`http://127.0.0.1:${port}/hook`, { "content-type": "application/json" }, "{}", {
        timeoutMs: 5_000,
        allowPrivate: true,
      });
      expect(status).toBe(204);
      expect(received).toBe("{}");
      await expect(
        postWebhook(`http://127.0.0.1:${port}/hook`, {}, "{}", { timeoutMs: 5_000, allowPrivate: false }),
      ).rejects.toBeInstanceOf(WebhookTargetRefusedError);
      // A name is resolved by the guarded lookup right before connecting (DNS rebinding).
      await expect(
        postWebhook(`http://localhost:${port}/hook`, {}, "{}", { timeoutMs: 5_000, allowPrivate: false }),
      ).rejects.toBeInstanceOf(WebhookTargetRefusedError);
      expect(received).toBe("{}");
    } finally {
      server.close();
    }
  });
});
