// @kiln/api: Kiln's tRPC API. Mount `appRouter` with `createContext` in an HTTP handler (apps/web).

export { type AuditEntry, AuditTrail, recordAudit } from "./audit.ts";
export { type CreateBuildInput, createBuild } from "./builds/create-build.ts";
export { downloadEngine, engineDownloadPath } from "./builds/engine-download.ts";
export { type CalibrationArray, type CalibrationSummary, checkCalibration } from "./calibration/check-calibration.ts";
export {
  calibrationStorageKey,
  type UploadedCalibration,
  uploadCalibration,
} from "./calibration/upload-calibration.ts";
export { type ApiDeps, type Context, clientIp, createContext, ORG_HEADER, type SessionInfo } from "./context.ts";
export { modelStorageKey, type UploadedModel, uploadModel } from "./models/upload-model.ts";
export { errorResponse, type OrgAccess, requireOrgAccess } from "./org-access.ts";
export { hasRole } from "./roles.ts";
export { type AppRouter, appRouter, createCaller } from "./root.ts";
export type { ApiServices } from "./services.ts";
export {
  adminProcedure,
  authedProcedure,
  createCallerFactory,
  middleware,
  type OrgContext,
  orgProcedure,
  ownerProcedure,
  publicProcedure,
  roleProcedure,
  router,
} from "./trpc.ts";
