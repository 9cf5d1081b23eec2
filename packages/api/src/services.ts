import type { BillingServices } from "@kiln/billing";
import type { BuildQueues } from "@kiln/builds";
import type { StorageProvider } from "@kiln/storage";

/** Services some routers need beyond the database: artifact storage and the build queues. */
export type ApiServices = {
  storage: StorageProvider;
  buildQueues: BuildQueues;
  /** Where invitation links point, e.g. "http://127.0.0.1:3000". */
  publicUrl: string;
  /** Stripe and its settings; absent when billing is not configured (everyone stays on Free). */
  billing?: BillingServices;
};
