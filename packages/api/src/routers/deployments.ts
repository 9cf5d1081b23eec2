// Deployments: create from a build, serving policy, drain/resume, delete, live status and replicas.

import { notFound } from "@kiln/errors";
import {
  createDeployment,
  deleteDeployment,
  drainDeployment,
  listDeployments,
  resumeDeployment,
  updateDeploymentPolicy,
} from "@kiln/serving";
import { z } from "zod";
import { adminProcedure, orgProcedure, router } from "../trpc.ts";

const ZPolicy = z.object({
  // 0 = scale to zero: nothing is loaded until a request arrives.
  minReplicas: z.number().int().min(0).max(64),
  maxReplicas: z.number().int().min(1).max(64),
  idleWindowSeconds: z
    .number()
    .int()
    .min(10)
    .max(7 * 24 * 3600),
  maxBatchSize: z.number().int().min(1).max(1024),
  maxQueueDelayMs: z.number().int().min(0).max(10_000),
});
export const ZCreateDeployment = ZPolicy.partial().extend({
  name: z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, "lowercase letters, digits and '-', starting with a letter or digit"),
  buildId: z.string().min(1),
});
export const ZDeploymentId = z.object({ id: z.string().min(1) });

const DEFAULTS = { minReplicas: 0, maxReplicas: 1, idleWindowSeconds: 300, maxBatchSize: 8, maxQueueDelayMs: 5 };

export const deploymentsRouter = router({
  list: orgProcedure.query(({ ctx }) => listDeployments(ctx, ctx.org.id)),

  get: orgProcedure.input(ZDeploymentId).query(async ({ ctx, input }) => {
    const found = (await listDeployments(ctx, ctx.org.id)).find((d) => d.id === input.id);
    if (!found) throw notFound("Deployment", input.id);
    return found;
  }),

  create: orgProcedure.input(ZCreateDeployment).mutation(async ({ ctx, input }) => {
    const created = await createDeployment(ctx, { ...DEFAULTS, ...input, orgId: ctx.org.id });
    ctx.audit.target("deployment", created.id, { name: input.name, buildId: input.buildId });
    return created;
  }),

  update: orgProcedure.input(ZPolicy.partial().extend(ZDeploymentId.shape)).mutation(async ({ ctx, input }) => {
    const { id, ...policy } = input;
    await updateDeploymentPolicy(ctx, ctx.org.id, id, policy);
    ctx.audit.target("deployment", id, policy);
    return { id };
  }),

  drain: orgProcedure.input(ZDeploymentId).mutation(async ({ ctx, input }) => {
    await drainDeployment(ctx, ctx.org.id, input.id);
    ctx.audit.target("deployment", input.id);
    return { id: input.id };
  }),

  resume: orgProcedure.input(ZDeploymentId).mutation(async ({ ctx, input }) => {
    await resumeDeployment(ctx, ctx.org.id, input.id);
    ctx.audit.target("deployment", input.id);
    return { id: input.id };
  }),

  delete: adminProcedure.input(ZDeploymentId).mutation(async ({ ctx, input }) => {
    await deleteDeployment(ctx, ctx.org.id, input.id);
    ctx.audit.target("deployment", input.id);
    return { id: input.id };
  }),
});
