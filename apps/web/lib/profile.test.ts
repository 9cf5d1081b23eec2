import type { TensorInfo } from "@kiln/engine";
import { describe, expect, it } from "vitest";
import { draftFromInputs, parseProfile } from "./profile.ts";

const image: TensorInfo = { name: "input", dtype: "float32", shape: ["batch", 3, 224, 224] };
const tokens: TensorInfo = { name: "ids", dtype: "int64", shape: ["batch", "sequence"] };
const fixed: TensorInfo = { name: "scale", dtype: "float32", shape: [1] };

describe("build profile", () => {
  it("prefills only dynamic inputs: fixed dims as they are, a leading dynamic dim 1/1/8, others 1", () => {
    expect(draftFromInputs([image, tokens, fixed])).toEqual({
      input: { min: ["1", "3", "224", "224"], opt: ["1", "3", "224", "224"], max: ["8", "3", "224", "224"] },
      ids: { min: ["1", "1"], opt: ["1", "1"], max: ["8", "1"] },
    });
  });

  it("parses the draft into the numbers the builds API takes", () => {
    const draft = draftFromInputs([tokens]);
    draft.ids = { min: ["1", "16"], opt: ["4", "128"], max: ["8", "512"] };
    expect(parseProfile(draft, [tokens])).toEqual({
      profile: { ids: { min: [1, 16], opt: [4, 128], max: [8, 512] } },
    });
  });

  it("names the input and dimension of a range that is out of order", () => {
    const draft = draftFromInputs([image]);
    draft.input = { min: ["4", "3", "224", "224"], opt: ["2", "3", "224", "224"], max: ["8", "3", "224", "224"] };
    expect(parseProfile(draft, [image])).toEqual({
      error: "input, dimension 0 (batch): need min ≤ opt ≤ max (got 4, 2, 8).",
    });
  });

  it("refuses values that are not whole numbers of 1 or more", () => {
    for (const bad of ["0", "-1", "1.5", "", "two"]) {
      const draft = draftFromInputs([tokens]);
      draft.ids = { min: ["1", bad], opt: ["1", "1"], max: ["8", "1"] };
      expect(parseProfile(draft, [tokens])).toEqual({
        error: "ids, dimension 1 (sequence): use whole numbers of 1 or more.",
      });
    }
  });
});
