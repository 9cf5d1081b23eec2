import { describe, expect, it } from "vitest";
import { parseStripeForm } from "./form-body.ts";

describe("parseStripeForm", () => {
  it("reads the SDK's bracket paths into nested objects and arrays", () => {
    const body = new URLSearchParams([
      ["mode", "subscription"],
      ["line_items[0][price]", "price_a"],
      ["line_items[0][quantity]", "1"],
      ["line_items[1][price]", "price_b"],
      ["metadata[orgId]", "org_1"],
      ["flow_data[subscription_update_confirm][items][0][id]", "si_1"],
    ]).toString();
    expect(parseStripeForm(body)).toEqual({
      mode: "subscription",
      line_items: [{ price: "price_a", quantity: "1" }, { price: "price_b" }],
      metadata: { orgId: "org_1" },
      flow_data: { subscription_update_confirm: { items: [{ id: "si_1" }] } },
    });
  });
});
