import { z } from "zod";

const port = (fallback: number) => z.coerce.number().int().min(0).max(65535).default(fallback);
const urlWithScheme = (schemes: string[]) =>
  z.url().refine((value) => schemes.some((s) => value.startsWith(`${s}://`)), {
    message: `must start with ${schemes.map((s) => `${s}://`).join(" or ")}`,
  });

/**
 * Every setting Kiln's processes read from the environment, one line each.
 * .env.example at the repository root mirrors this list; keep them in step.
 */
export const ZEnv = z
  .object({
    // development | test | production; production turns off dev-only conveniences.
    NODE_ENV: z.enum(["development", "test", "production"]).default("development"),
    // pino level for every process; "silent" is for tests.
    LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
    // Postgres connection string; the one source of truth for tenants, models, builds, usage.
    DATABASE_URL: urlWithScheme(["postgres", "postgresql"]),
    // Redis connection string; holds the worker registry, quotas and job queues.
    REDIS_URL: urlWithScheme(["redis", "rediss"]),
    // Prefix of every Redis key Kiln writes, so several installs (or tests) can share one Redis.
    REDIS_KEY_PREFIX: z
      .string()
      .regex(/^[a-z0-9:_-]*$/, "only a-z, 0-9, ':', '_' and '-'")
      .default("kiln:"),
    // Address the web app and the gateway listen on; 0.0.0.0 in containers.
    HOST: z.string().min(1).default("127.0.0.1"),
    // Port of the dashboard (apps/web).
    WEB_PORT: port(3000),
    // Port of the public inference API (apps/gateway); 0 picks a free one (tests).
    GATEWAY_PORT: port(8080),
    // Gateway processes sharing GATEWAY_PORT on this host (node:cluster): 1 to 256, or auto (one per
    // core, capped by a container's CPU limit); unset: 1. apps/gateway/src/cluster.ts reads it.
    GATEWAY_PROCESSES: z
      .string()
      .regex(/^(auto|[1-9]\d{0,2})$/, "a whole number from 1 to 256, or auto")
      .refine((v) => v === "auto" || Number(v) <= 256, "at most 256")
      .optional(),
    // Signs session cookies (32+ random characters); required in production, a fixed dev value otherwise.
    AUTH_SECRET: z.string().min(32, "must be at least 32 characters").optional(),
    // The dashboard's public address, for invitation links and auth; default http://<HOST>:<WEB_PORT>.
    WEB_PUBLIC_URL: urlWithScheme(["http", "https"]).optional(),
    // Sign-in attempts allowed per client address per minute before answers become 429.
    AUTH_SIGN_IN_LIMIT_PER_MINUTE: z.coerce.number().int().min(1).max(10_000).default(10),
    // Local state: embedded Postgres, private Redis, fs artifacts; relative paths resolve from the cwd.
    KILN_DATA_DIR: z.string().min(1).default(".kiln"),
    // Where uploaded models and built engines live: the local filesystem or an S3-compatible store.
    ARTIFACT_STORE: z.enum(["fs", "s3"]).default("fs"),
    // Folder for the fs store; defaults to <KILN_DATA_DIR>/artifacts.
    ARTIFACT_DIR: z.string().min(1).optional(),
    // S3 bucket for the s3 store (required when ARTIFACT_STORE=s3).
    S3_BUCKET: z.string().min(1).optional(),
    // S3 region, e.g. us-east-1.
    S3_REGION: z.string().min(1).default("us-east-1"),
    // Endpoint of a non-AWS S3-compatible store (MinIO, R2); unset means AWS.
    S3_ENDPOINT: z.url().optional(),
    // Credentials for the s3 store; unset means the SDK's default chain (instance role, etc.).
    S3_ACCESS_KEY_ID: z.string().min(1).optional(),
    // The secret half of those credentials; set together with S3_ACCESS_KEY_ID.
    S3_SECRET_ACCESS_KEY: z.string().min(1).optional(),
    // What this worker builds for and serves: "cpu" or a GPU class such as "cuda-sm90".
    WORKER_TARGET: z
      .string()
      .regex(/^(cpu|cuda-sm\d{2,3})$/, 'must be "cpu" or "cuda-sm<arch>", e.g. cuda-sm90')
      .default("cpu"),
    // The slot this worker owns: a MIG instance uuid, a GPU index, or a name for a CPU slot.
    WORKER_SLOT: z.string().min(1).default("cpu-0"),
    // Stable worker id; unset means one is generated at start (hostname + random).
    WORKER_ID: z
      .string()
      .regex(/^[A-Za-z0-9._-]+$/, "only letters, digits, '.', '_' and '-'")
      .optional(),
    // How often a worker refreshes its registry entry; the entry expires after three misses.
    WORKER_HEARTBEAT_MS: z.coerce.number().int().min(100).max(60_000).default(5_000),
    // A build job's lock; a worker that dies mid-build is noticed after about this long and the build retried.
    BUILD_LOCK_MS: z.coerce.number().int().min(1_000).max(600_000).default(30_000),
    // Port of the worker's internal serving endpoint (gateway -> replica); 0 picks a free one.
    SERVING_PORT: port(0),
    // Host gateways use to reach this worker's serving endpoint (its address on the cluster network).
    SERVING_HOST: z.string().min(1).default("127.0.0.1"),
    // Gateway -> worker over a Unix socket when both run on one host (TCP otherwise); false: TCP always.
    SERVING_UNIX_SOCKET: z
      .enum(["true", "false", "1", "0"])
      .default("true")
      .transform((v) => v === "true" || v === "1"),
    // Folder of workers' serving sockets (mode 0600 each); default: the OS temporary folder.
    SERVING_SOCKET_DIR: z.string().min(1).optional(),
    // Memory this worker's slot gives loaded engines, in bytes; a load job that does not fit waits for another slot.
    SERVING_SLOT_MEMORY_BYTES: z.coerce
      .number()
      .int()
      .min(0)
      .default(4 * 1024 ** 3),
    // How long a request to a scaled-to-zero deployment waits for its first replica before a 503.
    COLD_START_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(60_000),
    // Server key from which each organization's webhook signing secret is derived; required in production.
    WEBHOOK_SIGNING_SECRET: z.string().min(32, "must be at least 32 characters").optional(),
    // Let async-prediction webhooks call private, loopback and link-local addresses (SSRF guard off): tests and
    // single-host development only; production webhooks must reach public addresses.
    KILN_WEBHOOK_ALLOW_PRIVATE: z
      .enum(["true", "false", "1", "0"])
      .default("false")
      .transform((v) => v === "true" || v === "1"),
    // Hours an async prediction and its tensors are kept before they are deleted.
    PREDICTION_RETENTION_HOURS: z.coerce
      .number()
      .int()
      .min(1)
      .max(24 * 90)
      .default(24),
    // Stripe secret API key (sk_test_… / sk_live_…); unset turns paid plans off (everyone stays on Free).
    STRIPE_SECRET_KEY: z.string().min(1).optional(),
    // Signing secret of the Stripe webhook endpoint (whsec_…); webhooks are refused without it.
    STRIPE_WEBHOOK_SECRET: z.string().min(1).optional(),
    // Stripe API host; unset = api.stripe.com. Tests point host, port and protocol at a local double.
    STRIPE_API_HOST: z.string().min(1).optional(),
    // Stripe API port; unset = 443.
    STRIPE_API_PORT: z.coerce.number().int().min(1).max(65535).optional(),
    // Stripe API protocol; unset = https.
    STRIPE_API_PROTOCOL: z.enum(["http", "https"]).optional(),
    // Price ids of the Pro plan: the flat monthly price, and the metered request and compute-second prices.
    STRIPE_PRICE_PRO: z.string().min(1).optional(),
    STRIPE_PRICE_PRO_REQUESTS: z.string().min(1).optional(),
    STRIPE_PRICE_PRO_COMPUTE_SECONDS: z.string().min(1).optional(),
    // Price ids of the Enterprise plan, as for Pro.
    STRIPE_PRICE_ENTERPRISE: z.string().min(1).optional(),
    STRIPE_PRICE_ENTERPRISE_REQUESTS: z.string().min(1).optional(),
    STRIPE_PRICE_ENTERPRISE_COMPUTE_SECONDS: z.string().min(1).optional(),
    // event_name of the Stripe Billing meters that count requests and compute-seconds.
    STRIPE_METER_REQUESTS: z.string().min(1).default("kiln_requests"),
    STRIPE_METER_COMPUTE_SECONDS: z.string().min(1).default("kiln_compute_seconds"),
    // Days a paid plan keeps working after a failed payment before the organization drops to Free.
    BILLING_GRACE_DAYS: z.coerce.number().int().min(0).max(60).default(7),
  })
  .superRefine((env, ctx) => {
    if (env.NODE_ENV === "production" && !env.WEBHOOK_SIGNING_SECRET) {
      ctx.addIssue({ code: "custom", path: ["WEBHOOK_SIGNING_SECRET"], message: "is required in production" });
    }
    if (env.NODE_ENV === "production" && !env.AUTH_SECRET) {
      ctx.addIssue({ code: "custom", path: ["AUTH_SECRET"], message: "is required in production" });
    }
    if (env.ARTIFACT_STORE === "s3" && !env.S3_BUCKET) {
      ctx.addIssue({ code: "custom", path: ["S3_BUCKET"], message: "is required when ARTIFACT_STORE=s3" });
    }
    if (Boolean(env.S3_ACCESS_KEY_ID) !== Boolean(env.S3_SECRET_ACCESS_KEY)) {
      ctx.addIssue({
        code: "custom",
        path: [env.S3_ACCESS_KEY_ID ? "S3_SECRET_ACCESS_KEY" : "S3_ACCESS_KEY_ID"],
        message: "S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY must be set together",
      });
    }
  });

export type Env = z.infer<typeof ZEnv>;
