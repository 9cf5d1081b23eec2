// KilnClient: typed KServe v2 inference (JSON or binary tensors), async predictions, with retries
// on 429/503 that honour Retry-After.
import { KilnApiError } from "./errors.ts";
import { type Datatype, fromBytes, fromJson, type Tensor, type TensorInput, toBytes, toJson } from "./tensors.ts";

export interface KilnClientOptions {
  baseUrl: string;
  apiKey: string;
  /** Retries after 429/503 (and network errors on idempotent reads). Default 3. */
  maxRetries?: number;
  /** Longest wait between retries, whatever Retry-After says. Default 30 s. */
  maxRetryDelayMs?: number;
  fetch?: typeof fetch;
}

export interface InferOptions {
  inputs: Record<string, TensorInput>;
  /** Outputs to return (default: all). */
  outputs?: string[];
  /** Send inputs and receive outputs as binary tensors (Triton's extension). Default false. */
  binary?: boolean;
  version?: string;
  id?: string;
}

export interface InferResult {
  modelName: string;
  modelVersion?: string;
  id?: string;
  /** The gateway's request id (x-request-id), for support and usage records. */
  requestId: string | null;
  outputs: Record<string, Tensor>;
}

export interface Prediction {
  id: string;
  model: string;
  status: "queued" | "running" | "succeeded" | "failed" | "canceled";
  created_at: string;
  started_at: string | null;
  completed_at: string | null;
  expires_at: string;
  outputs?: { name: string; datatype: Datatype; shape: number[]; data: unknown[] }[];
  error?: string;
}

type WireTensor = {
  name: string;
  datatype: Datatype;
  shape: number[];
  data?: unknown[];
  parameters?: { binary_data_size?: number };
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class KilnClient {
  readonly #options: Required<Omit<KilnClientOptions, "fetch">> & { fetch: typeof fetch };

  constructor(options: KilnClientOptions) {
    this.#options = {
      maxRetries: 3,
      maxRetryDelayMs: 30_000,
      ...options,
      baseUrl: options.baseUrl.replace(/\/+$/, ""),
      fetch: options.fetch ?? globalThis.fetch,
    };
  }

  async #request(
    method: string,
    path: string,
    init: { body?: Uint8Array | string; headers?: Record<string, string> } = {},
  ): Promise<Response> {
    const { maxRetries, maxRetryDelayMs } = this.#options;
    for (let attempt = 0; ; attempt++) {
      const res = await this.#options.fetch(`${this.#options.baseUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${this.#options.apiKey}`, ...init.headers },
        body: init.body,
      });
      if (res.ok) return res;
      const retryAfter = Number(res.headers.get("retry-after"));
      const retryAfterSeconds = Number.isFinite(retryAfter) && retryAfter >= 0 ? retryAfter : undefined;
      let message = `${res.status} ${res.statusText}`;
      try {
        message = ((await res.json()) as { error?: string }).error ?? message;
      } catch {}
      if ((res.status === 429 || res.status === 503) && attempt < maxRetries) {
        const backoff = retryAfterSeconds !== undefined ? retryAfterSeconds * 1000 : 250 * 2 ** attempt;
        await sleep(Math.min(backoff, maxRetryDelayMs));
        continue;
      }
      throw new KilnApiError(res.status, message, retryAfterSeconds);
    }
  }

  #modelPath(model: string, version?: string) {
    return `/v2/models/${encodeURIComponent(model)}${version ? `/versions/${encodeURIComponent(version)}` : ""}`;
  }

  async infer(model: string, options: InferOptions): Promise<InferResult> {
    const binary = options.binary ?? false;
    const chunks: Uint8Array[] = [];
    const inputs = Object.entries(options.inputs).map(([name, t]) => {
      if (!binary) return { name, datatype: t.datatype, shape: t.shape, data: toJson(t) };
      const bytes = toBytes(t);
      chunks.push(bytes);
      return { name, datatype: t.datatype, shape: t.shape, parameters: { binary_data_size: bytes.byteLength } };
    });
    const header: Record<string, unknown> = { inputs };
    if (options.id) header.id = options.id;
    if (options.outputs)
      header.outputs = options.outputs.map((name) => ({ name, parameters: { binary_data: binary } }));
    else if (binary) header.parameters = { binary_data_output: true };
    const json = new TextEncoder().encode(JSON.stringify(header));
    const headers: Record<string, string> = {
      "content-type": binary ? "application/octet-stream" : "application/json",
    };
    let body: Uint8Array = json;
    if (binary) {
      headers["inference-header-content-length"] = String(json.byteLength);
      body = concat([json, ...chunks]);
    }
    const res = await this.#request("POST", `${this.#modelPath(model, options.version)}/infer`, { body, headers });
    const raw = new Uint8Array(await res.arrayBuffer());
    const lengthHeader = res.headers.get("inference-header-content-length");
    const headerLength = lengthHeader === null ? raw.byteLength : Number(lengthHeader);
    const answer = JSON.parse(new TextDecoder().decode(raw.subarray(0, headerLength))) as {
      model_name: string;
      model_version?: string;
      id?: string;
      outputs: WireTensor[];
    };
    let offset = headerLength;
    const outputs: Record<string, Tensor> = {};
    for (const o of answer.outputs) {
      const size = o.parameters?.binary_data_size;
      if (size !== undefined) {
        outputs[o.name] = {
          datatype: o.datatype,
          shape: o.shape,
          data: fromBytes(o.datatype, raw.subarray(offset, offset + size)),
        };
        offset += size;
      } else {
        outputs[o.name] = { datatype: o.datatype, shape: o.shape, data: fromJson(o.datatype, o.data ?? []) };
      }
    }
    return {
      modelName: answer.model_name,
      modelVersion: answer.model_version,
      id: answer.id,
      requestId: res.headers.get("x-request-id"),
      outputs,
    };
  }

  async metadata(
    model: string,
    version?: string,
  ): Promise<{ name: string; versions: string[]; inputs: WireTensor[]; outputs: WireTensor[] }> {
    return (await this.#request("GET", this.#modelPath(model, version))).json() as never;
  }

  readonly predictions = {
    /** Queues a prediction; with `wait`, holds up to that many seconds for its result. */
    create: async (options: {
      model: string;
      inputs: Record<string, TensorInput>;
      webhook?: string;
      wait?: number;
      version?: string;
    }): Promise<Prediction> => {
      const inputs = Object.entries(options.inputs).map(([name, t]) => ({
        name,
        datatype: t.datatype,
        shape: t.shape,
        data: toJson(t),
      }));
      const body = JSON.stringify({ model: options.model, version: options.version, webhook: options.webhook, inputs });
      const headers: Record<string, string> = { "content-type": "application/json" };
      if (options.wait) headers.prefer = `wait=${options.wait}`;
      return (await this.#request("POST", "/v1/predictions", { body, headers })).json() as Promise<Prediction>;
    },
    get: async (id: string, options: { wait?: number } = {}): Promise<Prediction> => {
      const headers: Record<string, string> = options.wait ? { prefer: `wait=${options.wait}` } : {};
      return (
        await this.#request("GET", `/v1/predictions/${encodeURIComponent(id)}`, { headers })
      ).json() as Promise<Prediction>;
    },
    cancel: async (id: string): Promise<Prediction> =>
      (await this.#request("POST", `/v1/predictions/${encodeURIComponent(id)}/cancel`)).json() as Promise<Prediction>,
  };
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.byteLength;
  }
  return out;
}
