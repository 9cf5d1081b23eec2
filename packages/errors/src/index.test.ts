import { describe, expect, it } from "vitest";
import { isKilnError, KilnError, notFound } from "./index.ts";

describe("KilnError", () => {
  it("maps codes to HTTP statuses and says what was not found", () => {
    const error = notFound("Model", "mdl_1");
    expect(error.httpStatus).toBe(404);
    expect(error.message).toBe("Model mdl_1 not found");
    expect(isKilnError(error, "NOT_FOUND")).toBe(true);
    expect(isKilnError(error, "CONFLICT")).toBe(false);
    expect(new KilnError("PAYLOAD_TOO_LARGE", "too big").httpStatus).toBe(413);
    expect(isKilnError(new Error("x"))).toBe(false);
  });
});
