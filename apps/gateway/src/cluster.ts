// Several gateway processes on one port (node:cluster, GATEWAY_PROCESSES). The primary forks the
// workers that share the listening port (the primary accepts and hands connections out
// round-robin, Node's default on Linux), restarts a worker that dies, drains them all on
// SIGTERM/SIGINT, and answers /metrics for all of them: a worker that gets a scrape asks the
// primary, which collects every live worker's registry over IPC and sums the series
// (AggregatorRegistry.aggregate), so Prometheus sees one set of series per host whichever worker
// it reaches.
//
// Each worker is a whole gateway (buildGateway), the same as a gateway on another host: its own
// Postgres pool, Redis connections, admission leases (per gateway, returned on close), batched usage
// events, replica connections, key/deployment/plan caches. Nothing in the gateway assumes one
// gateway per host: it has no instance id or Redis consumer name (the usage stream's consumers are
// the workers' aggregators, apps/worker). The periodic jobs are each safe to run in every process:
// - MinReplicaKeeper (every 3 s): asks for missing warm replicas with job ids that dedupe
//   (load-<deployment>-<n>), as several gateway hosts already do;
// - the prediction sweep (every 5 s): re-enqueues with the prediction id as the job id (one job
//   however many enqueue it) and deletes expired rows and their tensors (both idempotent: storage
//   deletes of a missing object succeed, deleteMany of gone rows deletes nothing);
// - BullMQ prediction and webhook workers: the queue hands each job to one of them;
// - the replica registry's background re-read and the mux connections' timeout checks: per process
//   by nature (each has its own in-flight requests).
// So none of them is elected to run once per host; N processes cost N times their (small) polling.
import cluster, { type Worker } from "node:cluster";
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import type { Logger } from "@kiln/logger";
import { AggregatorRegistry, type Registry } from "prom-client";

/** prom-client's JSON form of one registry (`registry.getMetricsAsJSON()`). */
type MetricsJson = Awaited<ReturnType<Registry["getMetricsAsJSON"]>>;

/** Set in the environment of the processes runPrimary forks. */
const WORKER_MARK = "KILN_GATEWAY_CLUSTER_WORKER";

/** Whether this process was forked by runPrimary (not merely a cluster worker of some other primary). */
export function isGatewayClusterWorker(): boolean {
  return cluster.isWorker && process.env[WORKER_MARK] === "1";
}

const METRICS_REQUEST = "kiln-gateway:metrics"; // worker -> primary: a scrape arrived
const METRICS_TEXT = "kiln-gateway:metrics-text"; // primary -> worker: the host's text
const COLLECT = "kiln-gateway:collect"; // primary -> worker: send your registry
const COLLECTED = "kiln-gateway:collected"; // worker -> primary: here it is

type Message =
  | { type: typeof METRICS_REQUEST; id: number }
  | { type: typeof METRICS_TEXT; id: number; text?: string; contentType?: string; error?: string }
  | { type: typeof COLLECT; id: number }
  | { type: typeof COLLECTED; id: number; metrics: MetricsJson };

/**
 * GATEWAY_PROCESSES: how many gateway processes serve this host's port. Unset, empty or 1: a single
 * process, no primary (the default: on the 2-core bench machine, where the gateway shares the cores
 * with its worker, two processes made a lower throughput ratio and a higher p99 than one:
 * bench/results/gateway-2026-12-07m.md). "auto": one per core, i.e. `os.availableParallelism()`
 * (CPU affinity) capped by a cgroup CPU limit when there is one (a container limited to 2 CPUs on a
 * 64-core node gets 2; one without a limit sees the node's cores). Else a whole number 1-256.
 */
export function gatewayProcesses(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.GATEWAY_PROCESSES?.trim();
  if (raw === undefined || raw === "") return 1;
  if (raw === "auto") {
    const quota = cgroupCpuLimit();
    return Math.max(1, Math.min(availableParallelism(), quota === undefined ? Infinity : Math.ceil(quota)));
  }
  if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > 256) {
    throw new Error(`GATEWAY_PROCESSES must be a whole number from 1 to 256, or auto (one per core), not '${raw}'`);
  }
  return Number(raw);
}

/** The CPUs a cgroup limit allows this process (cgroup v2 cpu.max, else v1's CFS quota); undefined: none. */
export function cgroupCpuLimit(read = (path: string) => readFileSync(path, "utf8")): number | undefined {
  const ratio = (quota: string | undefined, period: string | undefined) => {
    const q = Number(quota);
    const p = Number(period);
    return Number.isFinite(q) && q > 0 && Number.isFinite(p) && p > 0 ? q / p : undefined;
  };
  try {
    const [quota, period] = read("/sys/fs/cgroup/cpu.max").trim().split(/\s+/);
    return quota === "max" ? undefined : ratio(quota, period);
  } catch {}
  try {
    return ratio(
      read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").trim(),
      read("/sys/fs/cgroup/cpu/cpu.cfs_period_us").trim(),
    );
  } catch {
    return undefined;
  }
}

export interface PrimaryOptions {
  processes: number;
  logger: Logger;
  /** How long a SIGTERM waits for the workers to drain before it kills them (default 30 s). */
  drainTimeoutMs?: number;
  /** How long the primary waits for every worker's registry on a scrape (default 5 s). */
  collectTimeoutMs?: number;
}

/**
 * The primary: forks the workers (they run main.ts again, as cluster workers) and supervises them.
 * It opens no connection of its own and serves nothing but IPC.
 */
export function runPrimary(options: PrimaryOptions): void {
  const { processes, logger } = options;
  const drainTimeoutMs = options.drainTimeoutMs ?? 30_000;
  const collectTimeoutMs = options.collectTimeoutMs ?? 5_000;
  let stopping = false;
  let everListened = false;
  /** Consecutive workers that died within 5 s of their start: the restart delay doubles with each. */
  let quickDeaths = 0;
  const startedAt = new Map<Worker, number>();
  // Counters and histograms of workers that exited, as last collected: added to every later scrape so
  // that the host's totals never go down when one process is replaced (what it counted after its last
  // collection is lost). Gauges are the process's present state and leave with it.
  let retired: MetricsJson[] = [];
  const lastCollected = new Map<Worker, MetricsJson>();

  const fork = () => {
    const worker = cluster.fork({ [WORKER_MARK]: "1" });
    startedAt.set(worker, Date.now());
    worker.on("message", (message: Message) => onMessage(worker, message));
  };

  cluster.on("listening", (worker, address) => {
    if (!everListened) logger.info({ processes, port: address.port }, "gateway processes listening");
    everListened = true;
    logger.debug({ pid: worker.process.pid }, "gateway process listening");
  });

  cluster.on("exit", (worker, code, signal) => {
    const last = lastCollected.get(worker);
    if (last) {
      // Folded into one set, so that a host whose processes keep being replaced carries one list.
      AggregatorRegistry.aggregate([...retired, last.filter((m) => String(m.type) !== "gauge")])
        .getMetricsAsJSON()
        .then((folded) => (retired = [folded]))
        .catch((err) => logger.warn({ err }, "could not keep an exited gateway process's totals"));
    }
    lastCollected.delete(worker);
    const lived = Date.now() - (startedAt.get(worker) ?? 0);
    startedAt.delete(worker);
    if (stopping) return;
    if (!everListened) {
      // No process ever served: the cause (a port in use, a bad setting) would repeat; fail the host.
      logger.fatal({ pid: worker.process.pid, code, signal }, "gateway process exited before serving; stopping");
      stopping = true;
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill("SIGTERM");
      process.exitCode = 1;
      return;
    }
    quickDeaths = lived < 5_000 ? quickDeaths + 1 : 0;
    const delay = quickDeaths === 0 ? 0 : Math.min(10_000, 250 * 2 ** (quickDeaths - 1));
    logger.error(
      { pid: worker.process.pid, code, signal, restartInMs: delay },
      "gateway process exited; restarting it",
    );
    setTimeout(() => {
      if (!stopping) fork();
    }, delay).unref();
  });

  // Scrapes: gather every live worker's registry, add the retired totals, sum.
  let nextCollect = 0;
  const collecting = new Map<number, { pending: Set<Worker>; got: MetricsJson[]; done: () => void }>();
  const onMessage = (worker: Worker, message: Message) => {
    if (message?.type === COLLECTED) {
      const c = collecting.get(message.id);
      lastCollected.set(worker, message.metrics);
      if (!c?.pending.delete(worker)) return;
      c.got.push(message.metrics);
      if (c.pending.size === 0) c.done();
    } else if (message?.type === METRICS_REQUEST) {
      hostMetrics().then(
        ({ text, contentType }) => send(worker, { type: METRICS_TEXT, id: message.id, text, contentType }),
        (error: Error) => send(worker, { type: METRICS_TEXT, id: message.id, error: error.message }),
      );
    }
  };
  const hostMetrics = async () => {
    const id = nextCollect++;
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w?.isConnected());
    const got: MetricsJson[] = [];
    await new Promise<void>((resolve) => {
      const pending = new Set(workers);
      // A worker that does not answer in time (busy, or exiting) is left out of this scrape.
      const timer = setTimeout(done, collectTimeoutMs);
      function done() {
        clearTimeout(timer);
        collecting.delete(id);
        resolve();
      }
      collecting.set(id, { pending, got, done });
      for (const w of workers) if (!send(w, { type: COLLECT, id })) pending.delete(w);
      if (pending.size === 0) done();
    });
    const registry = AggregatorRegistry.aggregate([...got, ...retired]);
    return { text: await registry.metrics(), contentType: registry.contentType };
  };

  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w);
    logger.info({ signal, processes: workers.length }, "shutting down gateway processes");
    // Each worker closes as a single gateway does (stops accepting, finishes in-flight requests,
    // returns unused admissions, sends held usage events) and exits.
    for (const w of workers) w.process.kill("SIGTERM");
    const killer = setTimeout(() => {
      for (const w of Object.values(cluster.workers ?? {})) {
        logger.warn({ pid: w?.process.pid }, "gateway process did not drain in time; killing it");
        w?.process.kill("SIGKILL");
      }
    }, drainTimeoutMs);
    killer.unref();
  };
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => stop(signal));
  // The primary exits on its own once the last worker has (nothing else holds its event loop).
  for (let i = 0; i < processes; i++) fork();
}

function send(target: Worker | NodeJS.Process, message: Message): boolean {
  try {
    const sendTo = target.send as ((message: Message) => boolean) | undefined;
    if (!sendTo) return false;
    sendTo.call(target, message);
    return true;
  } catch {
    return false;
  }
}

/**
 * A cluster worker's side of the host's /metrics: `text()` asks the primary for every process's
 * series summed; `registry()` is this process's own, sent when the primary collects (none yet: an
 * empty list).
 */
export function clusterWorkerMetrics(registry: () => Registry | undefined) {
  let nextId = 0;
  const waiting = new Map<
    number,
    { resolve: (r: { text: string; contentType: string }) => void; reject: (e: Error) => void }
  >();
  const onMessage = (message: Message) => {
    if (message?.type === COLLECT) {
      const r = registry();
      (r ? r.getMetricsAsJSON() : Promise.resolve([] as MetricsJson)).then(
        (metrics) => send(process, { type: COLLECTED, id: message.id, metrics }),
        () => send(process, { type: COLLECTED, id: message.id, metrics: [] }),
      );
    } else if (message?.type === METRICS_TEXT) {
      const w = waiting.get(message.id);
      waiting.delete(message.id);
      if (!w) return;
      if (message.error !== undefined || message.text === undefined) w.reject(new Error(message.error ?? "no metrics"));
      else w.resolve({ text: message.text, contentType: message.contentType ?? "text/plain" });
    }
  };
  process.on("message", onMessage);
  return {
    text(timeoutMs = 10_000): Promise<{ text: string; contentType: string }> {
      const id = nextId++;
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiting.delete(id);
          reject(new Error("the gateway's primary process did not answer with the host's metrics"));
        }, timeoutMs);
        waiting.set(id, {
          resolve: (r) => {
            clearTimeout(timer);
            resolve(r);
          },
          reject: (e) => {
            clearTimeout(timer);
            reject(e);
          },
        });
        if (!send(process, { type: METRICS_REQUEST, id })) {
          clearTimeout(timer);
          waiting.delete(id);
          reject(new Error("no primary process to ask for the host's metrics"));
        }
      });
    },
    close() {
      process.off("message", onMessage);
    },
  };
}
