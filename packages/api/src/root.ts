// The API's root: it only composes. Each domain has one router file in ./routers; to add yours,
// import it and add one line below.
import { apiKeysRouter } from "./routers/api-keys.ts";
import { auditLogRouter } from "./routers/audit-log.ts";
import { billingRouter } from "./routers/billing.ts";
import { buildsRouter } from "./routers/builds.ts";
import { calibrationRouter } from "./routers/calibration.ts";
import { deploymentsRouter } from "./routers/deployments.ts";
import { meRouter } from "./routers/me.ts";
import { modelsRouter } from "./routers/models.ts";
import { orgsRouter } from "./routers/orgs.ts";
import { usageRouter } from "./routers/usage.ts";
import { createCallerFactory, router } from "./trpc.ts";

export const appRouter = router({
  me: meRouter,
  orgs: orgsRouter,
  auditLog: auditLogRouter,
  apiKeys: apiKeysRouter,
  billing: billingRouter,
  models: modelsRouter,
  builds: buildsRouter,
  calibration: calibrationRouter,
  deployments: deploymentsRouter,
  usage: usageRouter,
});

export type AppRouter = typeof appRouter;

/** Server-side calls without HTTP (tests, server components): `createCaller(ctx).orgs.listMine()`. */
export const createCaller = createCallerFactory(appRouter);
