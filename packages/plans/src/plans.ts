/**
 * Kiln's plans: what each costs, what it includes and what it allows. This is the one place these
 * numbers live; the gateway's quotas, the control plane's limits and billing all read them from here.
 *
 * Money is in integer units so that sums are exact: a plan's price in cents, overage rates in
 * micro-dollars (1e-6 USD) per unit, because a single request costs a fraction of a cent.
 */

export const PLAN_IDS = ["free", "pro", "enterprise"] as const;
export type PlanId = (typeof PLAN_IDS)[number];

/** The GPU share a plan's deployments run on: a MIG profile, or time-shared devices. */
export type GpuSliceProfile = "shared" | "1g.10gb" | "3g.40gb" | "7g.80gb";

export type Plan = {
  id: PlanId;
  name: string;
  /** The flat monthly price, in cents. */
  monthlyPriceCents: number;
  /** Free is chosen without Checkout; paid plans need a card on file in Stripe. */
  requiresPaymentMethod: boolean;
  /** Usage each billing period covered by the monthly price. */
  included: { requests: number; computeSeconds: number };
  /** Price of usage beyond `included`, or null when usage beyond it is refused instead of billed. */
  overage: { microDollarsPerRequest: number; microDollarsPerComputeSecond: number } | null;
  limits: {
    deployments: number;
    replicasPerDeployment: number;
    /** Sustained request rate per organization (token-bucket refill), and the bucket size. */
    requestsPerSecond: number;
    burstRequests: number;
    /** Hard monthly caps; null where usage is billed as overage instead. */
    monthlyRequests: number | null;
    monthlyComputeSeconds: number | null;
    maxModelBytes: number;
    maxRequestBytes: number;
    gpuSlice: GpuSliceProfile;
  };
};

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

export const plans: Readonly<Record<PlanId, Plan>> = {
  free: {
    id: "free",
    name: "Free",
    monthlyPriceCents: 0,
    requiresPaymentMethod: false,
    included: { requests: 10_000, computeSeconds: 3_600 },
    overage: null,
    limits: {
      deployments: 2,
      replicasPerDeployment: 1,
      requestsPerSecond: 5,
      burstRequests: 10,
      monthlyRequests: 10_000,
      monthlyComputeSeconds: 3_600,
      maxModelBytes: 256 * MiB,
      maxRequestBytes: 1 * MiB,
      gpuSlice: "shared",
    },
  },
  pro: {
    id: "pro",
    name: "Pro",
    monthlyPriceCents: 49_00,
    requiresPaymentMethod: true,
    included: { requests: 1_000_000, computeSeconds: 36_000 },
    // $0.50 per thousand requests, $1.44 per compute-hour.
    overage: { microDollarsPerRequest: 500, microDollarsPerComputeSecond: 400 },
    limits: {
      deployments: 20,
      replicasPerDeployment: 4,
      requestsPerSecond: 100,
      burstRequests: 200,
      monthlyRequests: null,
      monthlyComputeSeconds: null,
      maxModelBytes: 2 * GiB,
      maxRequestBytes: 16 * MiB,
      gpuSlice: "3g.40gb",
    },
  },
  enterprise: {
    id: "enterprise",
    name: "Enterprise",
    monthlyPriceCents: 499_00,
    requiresPaymentMethod: true,
    included: { requests: 20_000_000, computeSeconds: 720_000 },
    // $0.30 per thousand requests, $0.90 per compute-hour.
    overage: { microDollarsPerRequest: 300, microDollarsPerComputeSecond: 250 },
    limits: {
      deployments: 200,
      replicasPerDeployment: 16,
      requestsPerSecond: 1_000,
      burstRequests: 2_000,
      monthlyRequests: null,
      monthlyComputeSeconds: null,
      maxModelBytes: 16 * GiB,
      maxRequestBytes: 64 * MiB,
      gpuSlice: "7g.80gb",
    },
  },
};

export function isPlanId(value: string): value is PlanId {
  return (PLAN_IDS as readonly string[]).includes(value);
}

/** Thrown for a plan id that is not one of PLAN_IDS (a corrupt row or a bad argument). */
export class UnknownPlanError extends Error {
  readonly code = "UNKNOWN_PLAN";
  constructor(readonly planId: string) {
    super(`Unknown plan "${planId}": expected one of ${PLAN_IDS.join(", ")}`);
    this.name = "UnknownPlanError";
  }
}

export function planFor(planId: string): Plan {
  if (!isPlanId(planId)) throw new UnknownPlanError(planId);
  return plans[planId];
}

/** Plans in the order they are shown and ranked: a move to a later one is an upgrade. */
export function isUpgrade(from: PlanId, to: PlanId): boolean {
  return PLAN_IDS.indexOf(to) > PLAN_IDS.indexOf(from);
}
