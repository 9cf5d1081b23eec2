"use client";

import Link from "next/link";
import { useRouter, useSearchParams } from "next/navigation";
import { type FormEvent, useState } from "react";
import { Button, Field, focusFirstInvalid, Input } from "@/components/ui";
import { authClient } from "@/lib/auth-client";
import { emailProblem, passwordProblems } from "@/lib/credentials";
import { safeNext } from "@/lib/safe-next";

type Mode = "sign-in" | "sign-up";
type Errors = { name?: string; email?: string; password?: string; form?: string };

/**
 * Sign-in and sign-up share one form. Fields are checked when they lose focus and again on submit,
 * with the same rules the server applies, so people learn what is wrong before they send.
 */
export function AuthForm({ mode }: { mode: Mode }) {
  const router = useRouter();
  const nextParam = useSearchParams().get("next");
  const next = safeNext(nextParam);
  // Switching between sign-in and sign-up keeps where the person was headed (an invitation, say).
  const carry = nextParam ? `?next=${encodeURIComponent(next)}` : "";
  const [values, setValues] = useState({ name: "", email: "", password: "" });
  const [errors, setErrors] = useState<Errors>({});
  const [isSubmitting, setSubmitting] = useState(false);
  const isSignUp = mode === "sign-up";

  const check = (field: keyof typeof values, value: string): string | undefined => {
    if (field === "name") return isSignUp && !value.trim() ? "Enter your name." : undefined;
    if (field === "email") return emailProblem(value);
    if (!value) return "Enter your password.";
    return isSignUp ? passwordProblems(value)[0] : undefined;
  };

  const update = (field: keyof typeof values) => (event: { target: { value: string } }) => {
    const value = event.target.value;
    setValues((v) => ({ ...v, [field]: value }));
    // Once a field shows an error, re-check it as the user types so the message clears promptly.
    if (errors[field]) setErrors((e) => ({ ...e, [field]: check(field, value) }));
  };
  const blur = (field: keyof typeof values) => () => setErrors((e) => ({ ...e, [field]: check(field, values[field]) }));

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const found: Errors = {
      name: check("name", values.name),
      email: check("email", values.email),
      password: check("password", values.password),
    };
    setErrors(found);
    if (found.name || found.email || found.password) return focusFirstInvalid(event.currentTarget as HTMLFormElement);
    setSubmitting(true);
    const result = isSignUp
      ? await authClient.signUp.email({
          name: values.name.trim(),
          email: values.email.trim(),
          password: values.password,
        })
      : await authClient.signIn.email({ email: values.email.trim(), password: values.password });
    if (result.error) {
      setSubmitting(false);
      setErrors({ form: describeAuthError(result.error, mode) });
      return;
    }
    router.replace(next);
    router.refresh();
  };

  return (
    <form onSubmit={submit} noValidate aria-labelledby="auth-title">
      <h1 id="auth-title" className="auth-title">
        {isSignUp ? "Create your account" : "Sign in to Kiln"}
      </h1>
      {errors.form ? (
        <p className="ui-callout ui-callout--danger" role="alert">
          {errors.form}
        </p>
      ) : null}
      {isSignUp ? (
        <Field label="Name" error={errors.name}>
          <Input name="name" autoComplete="name" value={values.name} onChange={update("name")} onBlur={blur("name")} />
        </Field>
      ) : null}
      <Field label="Email" error={errors.email}>
        <Input
          name="email"
          type="email"
          autoComplete="email"
          value={values.email}
          onChange={update("email")}
          onBlur={blur("email")}
        />
      </Field>
      <Field
        label="Password"
        error={errors.password}
        hint={isSignUp ? "At least 12 characters, with a letter and a digit or symbol." : undefined}
      >
        <Input
          name="password"
          type="password"
          autoComplete={isSignUp ? "new-password" : "current-password"}
          value={values.password}
          onChange={update("password")}
          onBlur={blur("password")}
        />
      </Field>
      <Button type="submit" variant="primary" isLoading={isSubmitting} className="auth-submit">
        {isSignUp ? "Create account" : "Sign in"}
      </Button>
      <p className="auth-switch">
        {isSignUp ? (
          <>
            Already have an account? <Link href={`/sign-in${carry}`}>Sign in</Link>
          </>
        ) : (
          <>
            New to Kiln? <Link href={`/sign-up${carry}`}>Create an account</Link>
          </>
        )}
      </p>
    </form>
  );
}

function describeAuthError(error: { status?: number; message?: string; code?: string }, mode: Mode): string {
  if (error.status === 429) return "Too many attempts. Wait a minute, then try again.";
  if (mode === "sign-in" && (error.status === 401 || error.code === "INVALID_EMAIL_OR_PASSWORD")) {
    return "That email and password do not match an account.";
  }
  if (error.code === "USER_ALREADY_EXISTS") return "An account with this email already exists. Sign in instead.";
  return error.message || "Something went wrong. Try again.";
}
