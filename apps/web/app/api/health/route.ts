// Liveness of the dashboard process, for load balancers and `npm start`'s own checks.
export const dynamic = "force-dynamic";

const startedAt = Date.now();

export function GET(): Response {
  return Response.json(
    { status: "ok", service: "web", uptimeSeconds: Math.round((Date.now() - startedAt) / 1000) },
    { headers: { "cache-control": "no-store" } },
  );
}
