import { KilnEngineError } from "@kiln/engine";
import { describe, expect, it } from "vitest";
import { describeBuildFailure } from "./failure-messages.ts";

describe("build failure messages", () => {
  it("says what went wrong once and what to do, and which failures are final", () => {
    const repeated = new KilnEngineError(
      "OUT_OF_MEMORY",
      "arena of 99 GB exceeds the budget: arena of 99 GB exceeds the budget",
    );
    expect(describeBuildFailure(repeated)).toEqual({
      message:
        "The build ran out of memory: arena of 99 GB exceeds the budget. Lower the profiles' max shapes (batch size, sequence length) and build again.",
      isFinal: true,
    });
    expect(describeBuildFailure(new KilnEngineError("INTERNAL", "boom.")).isFinal).toBe(false);
    expect(describeBuildFailure(new KilnEngineError("INVALID_MODEL", "bad graph")).message).toMatch(
      /^The model could not be read: bad graph\. Re-export/,
    );
  });
});
