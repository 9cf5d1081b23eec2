// How a small JSON answer is handed to node:http: as a string or as a Buffer. Two node:http
// servers in processes of their own answer every POST with the same head (the gateway's CORS,
// request id and content type) and the same small JSON body, one with res.end(string), one with
// res.end(buffer); wrk loads them in turn, round by round, so drift on a shared machine hits both.
//   npx tsx bench/http-answer-body.ts [--rounds 8] [--duration 3] [--connections 16] [--threads 2]
// Node joins a string body to the response head and writes both with one plain socket write; a
// Buffer body follows the head as a second chunk through the corked writev path. The gateway sends
// small JSON answers as strings for this (apps/gateway/src/routes/inference.ts, httpAnswer).
// Writes bench/results/http-answer-body-<date>.md and prints it.
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { CORS_HEADERS } from "../apps/gateway/src/cors.ts";
import { ROOT } from "../test/support.ts";
import { median } from "./lib/stats.ts";

const { values: args } = parseArgs({
  options: {
    rounds: { type: "string", default: "8" },
    duration: { type: "string", default: "3" },
    connections: { type: "string", default: "16" },
    threads: { type: "string", default: "2" },
    out: { type: "string" },
  },
});
const ROUNDS = Number(args.rounds);

// The dense test model's answer, as the worker encodes it for a client.
const ANSWER = JSON.stringify({
  id: "r1",
  model_name: "dense",
  model_version: "1",
  outputs: [{ name: "y", datatype: "FP32", shape: [1, 3], data: [0.1, 0.2, 0.3] }],
});
// The head the gateway writes with it (infer-fast-path.ts, writeAnswer).
const HEAD = [
  ...Object.entries(CORS_HEADERS).flat(),
  "x-request-id",
  "9737fcb2-eb69-447d-8872-b526e9d79180",
  "content-type",
  "application/json; charset=utf-8",
  "content-length",
  String(Buffer.byteLength(ANSWER)),
];

// The server: argv[1] is "string" or "buffer"; prints its URL once listening.
const SERVER = `
import http from "node:http";
const text = ${JSON.stringify(ANSWER)};
const bytes = Buffer.from(text);
const head = ${JSON.stringify(HEAD)};
const body = process.argv[1] === "string" ? text : bytes;
const server = http.createServer((req, res) => {
  req.on("data", () => {});
  req.on("end", () => { res.writeHead(200, head); res.end(body); });
});
server.listen(0, "127.0.0.1", () => console.log("http://127.0.0.1:" + server.address().port));
`;

function startServer(kind: "string" | "buffer") {
  const child = spawn(process.execPath, ["--input-type=module", "-e", SERVER, kind], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const url = new Promise<string>((resolve) => child.stdout.once("data", (d) => resolve(String(d).trim())));
  return { child, url };
}

const dir = mkdtempSync(join(tmpdir(), "kiln-http-body-"));
const script = join(dir, "post.lua");
writeFileSync(
  script,
  [
    'wrk.method = "POST"',
    `wrk.body = '{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}'`,
    'wrk.headers["content-type"] = "application/json"',
    'function done(summary) io.write(string.format(\'\\n{"requests":%d,"us":%d}\\n\', summary.requests, summary.duration)) end',
  ].join("\n"),
);

function wrk(url: string): number {
  const out = execFileSync(
    "wrk",
    ["-t", String(args.threads), "-c", String(args.connections), "-d", `${args.duration}s`, "-s", script, url],
    { encoding: "utf8" },
  );
  const line = out.split("\n").find((l) => l.startsWith("{"));
  if (!line) throw new Error(`wrk gave no summary: ${out}`);
  const r = JSON.parse(line) as { requests: number; us: number };
  return r.requests / (r.us / 1e6);
}

const servers = { string: startServer("string"), buffer: startServer("buffer") };
process.on("exit", () => {
  for (const s of Object.values(servers)) s.child.kill();
  rmSync(dir, { recursive: true, force: true });
});
const urls = { string: await servers.string.url, buffer: await servers.buffer.url };
for (const url of Object.values(urls)) wrk(url); // warm-up
const rows: { string: number; buffer: number }[] = [];
for (let round = 0; round < ROUNDS; round++) {
  // Which goes first alternates too.
  const first = round % 2 === 0 ? "string" : "buffer";
  const a = wrk(urls[first]);
  const b = wrk(urls[first === "string" ? "buffer" : "string"]);
  const row = first === "string" ? { string: a, buffer: b } : { string: b, buffer: a };
  rows.push(row);
  console.error(`round ${round + 1}/${ROUNDS}: string ${row.string.toFixed(0)}, buffer ${row.buffer.toFixed(0)} req/s`);
}

const ratios = rows.map((r) => r.string / r.buffer);
const date = new Date().toISOString().slice(0, 10);
const commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, encoding: "utf8" }).trim();
const report = `# A small JSON answer through node:http: string vs Buffer body, ${date}

Command: \`npx tsx bench/http-answer-body.ts --rounds ${ROUNDS} --duration ${args.duration} --connections ${args.connections} --threads ${args.threads}\` (commit ${commit})

Machine: ${cpus()[0]?.model ?? "?"}, ${cpus().length} cores, Node ${process.version}; load average before ${loadavg()
  .map((v) => v.toFixed(2))
  .join(" ")}.
Two node:http servers (own processes) answer each POST with the gateway's JSON answer head and a
${Buffer.byteLength(ANSWER)}-byte body,
\`res.end(string)\` against \`res.end(buffer)\`; wrk (${args.threads} threads, ${args.connections} connections, ${args.duration} s) loads them in turn.

| Round | string (req/s) | Buffer (req/s) | string / Buffer |
| ---: | ---: | ---: | ---: |
${rows.map((r, i) => `| ${i + 1} | ${r.string.toFixed(0)} | ${r.buffer.toFixed(0)} | ${(r.string / r.buffer).toFixed(2)} |`).join("\n")}

Medians: string ${median(rows.map((r) => r.string)).toFixed(0)} req/s, Buffer ${median(rows.map((r) => r.buffer)).toFixed(0)} req/s;
median of the rounds' ratios **${median(ratios).toFixed(2)}** (string faster in ${ratios.filter((r) => r > 1).length} of ${ROUNDS} rounds).
`;
writeFileSync(args.out ?? join(ROOT, "bench", "results", `http-answer-body-${date}.md`), report);
console.log(report);
process.exit(0); // the servers' pipes would keep the process alive; exit kills them
