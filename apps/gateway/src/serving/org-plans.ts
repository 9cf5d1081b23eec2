// Which plan an organization is on right now, and whether it may be served at all (402 when a paid
// subscription has lapsed past its grace period). Cached for a few seconds per organization.
import type { PrismaClient } from "@kiln/db";
import { currentPlanId, type Plan, planFor, type SubscriptionStatus } from "@kiln/plans";

const CACHE_MS = 5_000;
/** Past this age a cached standing is not used at all, only reloaded. */
const STALE_MS = 60_000;
const LAPSED: SubscriptionStatus[] = ["unpaid", "incomplete_expired", "past_due"];

export interface OrgStanding {
  plan: Plan;
  /** Set when requests must be refused with 402. */
  paymentProblem?: string;
}

export class OrgPlans {
  readonly #cache = new Map<string, { value: OrgStanding; at: number }>();
  readonly #loading = new Map<string, Promise<OrgStanding>>();
  constructor(private readonly prisma: PrismaClient) {}

  async standing(orgId: string): Promise<OrgStanding> {
    return this.cached(orgId) ?? this.#refresh(orgId);
  }

  /**
   * standing's answer without waiting when the cache has it (fresh, or recent: then a refresh starts
   * in the background); undefined when it must be loaded.
   */
  cached(orgId: string): OrgStanding | undefined {
    const hit = this.#cache.get(orgId);
    if (!hit) return undefined;
    const age = Date.now() - hit.at;
    if (age < CACHE_MS) return hit.value;
    if (age < STALE_MS) {
      // Answer from the recent value and refresh in the background (one query at a time).
      this.#refresh(orgId).catch(() => undefined);
      return hit.value;
    }
    return undefined;
  }

  #refresh(orgId: string): Promise<OrgStanding> {
    let loading = this.#loading.get(orgId);
    if (!loading) {
      loading = this.#load(orgId).finally(() => this.#loading.delete(orgId));
      this.#loading.set(orgId, loading);
    }
    return loading;
  }

  async #load(orgId: string): Promise<OrgStanding> {
    const sub = await this.prisma.subscription.findUnique({
      where: { orgId },
      select: { plan: true, status: true, graceEndsAt: true },
    });
    const state = sub
      ? { plan: sub.plan, status: sub.status as SubscriptionStatus, graceEndsAt: sub.graceEndsAt }
      : null;
    const plan = planFor(currentPlanId(state));
    let paymentProblem: string | undefined;
    // A paid subscription that stopped paying (and is past any grace) is refused rather than
    // silently served on Free: the customer should learn that their payment failed.
    if (sub && sub.plan !== "free" && plan.id === "free" && LAPSED.includes(sub.status as SubscriptionStatus)) {
      paymentProblem = `subscription is ${sub.status}: update the payment method to resume serving`;
    }
    const value = { plan, paymentProblem };
    this.#cache.set(orgId, { value, at: Date.now() });
    return value;
  }
}
