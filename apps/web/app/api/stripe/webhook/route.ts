import { handleStripeWebhook } from "@kiln/billing";
import { services } from "@/lib/server/services";

// Stripe's webhook. The signature covers the exact bytes Stripe sent, so the body is read raw and
// handed to the billing package untouched; everything else happens there.
export async function POST(request: Request): Promise<Response> {
  const { deps } = services();
  if (!deps.billing) {
    return Response.json(
      { error: "Billing is not configured on this Kiln (STRIPE_SECRET_KEY is unset)" },
      { status: 503 },
    );
  }
  const body = Buffer.from(await request.arrayBuffer());
  const result = await handleStripeWebhook({ ...deps, ...deps.billing }, body, request.headers.get("stripe-signature"));
  return Response.json(result.body, { status: result.status });
}
