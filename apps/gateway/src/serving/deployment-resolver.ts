// Resolves a model name in an API key's organization to what serving needs: the deployment's
// policy, the build's engine and the signature requests are validated against. Cached briefly in
// process; a foreign or unknown name is a 404 either way.
import type { PrismaClient } from "@kiln/db";
import type { Profile, TensorInfo } from "@kiln/engine";
import { type ServedDeployment, ServingError, type ServingSignature } from "@kiln/serving";

export interface ResolvedDeployment {
  served: ServedDeployment;
  name: string;
  status: string;
  /** The model version number the deployment serves (KServe's "version"). */
  version: string;
  /** Name and version as the client's answer names them (built once, sent with each request to a worker). */
  model: { name: string; version: string };
  signature: ServingSignature;
}

const CACHE_MS = 2_000;
/** Past this age a cached deployment is not served at all, only reloaded. */
const STALE_MS = 30_000;

function asTensorInfos(value: unknown): TensorInfo[] {
  if (!Array.isArray(value)) return [];
  return value.filter(
    (t): t is TensorInfo => typeof t === "object" && t !== null && typeof (t as TensorInfo).name === "string",
  );
}

/** Build.profiles holds engine profiles ({input: {min, opt, max}}); anything else (spec strings) is skipped. */
function asProfiles(value: unknown): Profile[] {
  if (!Array.isArray(value)) return [];
  return value.filter((p): p is Profile => {
    if (typeof p !== "object" || p === null) return false;
    return Object.values(p).every(
      (r) => Array.isArray((r as { min?: unknown }).min) && Array.isArray((r as { max?: unknown }).max),
    );
  });
}

export class DeploymentResolver {
  /** Per organization, then per name: an org's names never meet another org's. */
  readonly #cache = new Map<string, Map<string, { value: ResolvedDeployment | null; at: number }>>();
  #cached = 0;
  readonly #loading = new Map<string, Promise<ResolvedDeployment | null>>();
  constructor(
    private readonly prisma: PrismaClient,
    private readonly defaults: { replicaCap: (orgId: string) => Promise<number> },
  ) {}

  async resolve(orgId: string, name: string): Promise<ResolvedDeployment> {
    const known = this.resolveCached(orgId, name);
    if (known) return known;
    const value = await this.#reload(orgId, name);
    if (!value) throw new ServingError("NOT_FOUND", `model '${name}' not found`);
    return value;
  }

  /**
   * resolve's answer without waiting when the cache has it (fresh, or stale but recent: then a
   * refresh starts in the background, as resolve does); undefined when it must be loaded.
   * Throws the same 404 for a name cached as unknown.
   */
  resolveCached(orgId: string, name: string): ResolvedDeployment | undefined {
    const hit = this.#cache.get(orgId)?.get(name);
    if (!hit) return undefined;
    const age = Date.now() - hit.at;
    if (age < CACHE_MS) {
      if (!hit.value) throw new ServingError("NOT_FOUND", `model '${name}' not found`);
      return hit.value;
    }
    if (hit.value && age < STALE_MS) {
      // Stale but recent: answer from it and refresh in the background, so no request waits
      // on Postgres while the deployment is in steady use (status changes show within ~CACHE_MS).
      this.#reload(orgId, name).catch(() => undefined);
      return hit.value;
    }
    return undefined;
  }

  /** One query per name however many requests need it at once. */
  #reload(orgId: string, name: string): Promise<ResolvedDeployment | null> {
    const key = `${orgId}\u0000${name}`;
    let loading = this.#loading.get(key);
    if (!loading) {
      loading = this.#load(orgId, name)
        .then((value) => {
          let names = this.#cache.get(orgId);
          if (!names) {
            if (this.#cached >= 10_000) {
              this.#cache.clear();
              this.#cached = 0;
            }
            names = new Map();
            this.#cache.set(orgId, names);
          }
          if (!names.has(name)) this.#cached++;
          names.set(name, { value, at: Date.now() });
          return value;
        })
        .finally(() => this.#loading.delete(key));
      this.#loading.set(key, loading);
    }
    return loading;
  }

  /** The same, by deployment id (async predictions remember the id, not the name). */
  async resolveById(orgId: string, deploymentId: string): Promise<ResolvedDeployment> {
    const row = await this.prisma.deployment.findFirst({ where: { id: deploymentId, orgId }, select: { name: true } });
    if (!row) throw new ServingError("NOT_FOUND", `deployment ${deploymentId} not found`);
    return this.resolve(orgId, row.name);
  }

  async #load(orgId: string, name: string): Promise<ResolvedDeployment | null> {
    // Scoped by the key's org: another organization's deployment of the same name is invisible.
    const row = await this.prisma.deployment.findUnique({
      where: { orgId_name: { orgId, name } },
      include: { build: { include: { modelVersion: { select: { version: true, signature: true } } } } },
    });
    if (!row) return null;
    const { build } = row;
    const signature = (build.modelVersion.signature ?? {}) as { inputs?: unknown; outputs?: unknown };
    const replicaCap = await this.defaults.replicaCap(orgId);
    const version = String(build.modelVersion.version);
    return {
      name: row.name,
      status: row.status,
      version,
      model: { name: row.name, version },
      signature: {
        inputs: asTensorInfos(signature.inputs),
        outputs: asTensorInfos(signature.outputs),
        profiles: asProfiles(build.profiles),
      },
      served: {
        deploymentId: row.id,
        orgId,
        buildId: build.id,
        target: build.target,
        engineStorageKey: build.engineStorageKey ?? "",
        requiredMemoryBytes: Number(build.deviceMemoryBytes ?? 0),
        maxBatchSize: row.maxBatchSize,
        maxQueueDelayMs: row.maxQueueDelayMs,
        idleWindowSeconds: row.idleWindowSeconds,
        minReplicas: row.minReplicas,
        // The plan caps replicas whatever the deployment asks for.
        maxReplicas: Math.min(row.maxReplicas, replicaCap),
      },
    };
  }

  /** Ready to take requests: the engine exists and the deployment is not being taken down. */
  static isServable(d: ResolvedDeployment): boolean {
    return d.served.engineStorageKey !== "" && d.status !== "failed" && d.status !== "draining";
  }
}
