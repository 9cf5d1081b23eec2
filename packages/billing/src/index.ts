export { getBillingOverview, listPastInvoices, type PastInvoice } from "./billing-overview.ts";
export { type BillingPeriod, billingPeriodOf } from "./billing-period.ts";
export { type ChangePlanInput, type ChangePlanResult, changePlan, createPortalSession } from "./change-plan.ts";
export type { BillingConfig, BillingDeps, BillingServices } from "./deps.ts";
export { ensureStripeCustomer } from "./ensure-stripe-customer.ts";
export { enforceGracePeriods } from "./grace-period.ts";
export {
  enqueueMeterEvents,
  type MeterKind,
  meterEventIdentifier,
  millisecondsToSecondsValue,
  type SendOptions,
  type SendReport,
  sendDueMeterEvents,
} from "./meter-reporting.ts";
export { dismissNotice, listNotices, recordNotice } from "./notices.ts";
export {
  checkSpendCap,
  loadOrgBilling,
  periodUsage,
  recordComputeUsage,
  recordSpendCapNotices,
  refreshSpendLimits,
  SPEND_CAP_CHECK_LUA,
  type SpendCapDecision,
  type SpendCapDeps,
  setSpendCap,
  spendCapKeys,
  spendCapThresholdsReached,
} from "./spend-cap.ts";
export { createStripeClient, isBillingConfigured } from "./stripe-client.ts";
export { handleStripeWebhook, type WebhookResponse } from "./webhook/handle-stripe-webhook.ts";
export { EVENT_HANDLERS, type HandledEventType } from "./webhook/handlers/index.ts";
