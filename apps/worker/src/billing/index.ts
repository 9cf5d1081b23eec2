export { type BillingTickReport, runBillingTick } from "./billing-tick.ts";
export { BILLING_QUEUE, type RunningBillingWorker, startBillingWorker } from "./start-billing-worker.ts";
