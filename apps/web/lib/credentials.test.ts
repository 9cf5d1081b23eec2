import { passwordProblems as serverPasswordProblems } from "@kiln/auth";
import { describe, expect, it } from "vitest";
import { emailProblem, passwordProblems } from "./credentials.ts";

describe("sign-up checks in the browser", () => {
  it("give exactly the password messages the server enforces", () => {
    const samples = ["", "short", "a".repeat(12), "123456789012", "correct horse 42", "x".repeat(129), "é".repeat(12)];
    for (const password of samples)
      expect(passwordProblems(password), password).toEqual(serverPasswordProblems(password));
  });

  it("explain what is wrong with an email address", () => {
    expect(emailProblem("")).toBe("Enter your email address.");
    expect(emailProblem("ada@")).toBe("Enter an email address like name@example.com.");
    expect(emailProblem(" ada@example.com ")).toBeUndefined();
  });
});
