import type { Metadata } from "next";
import { Suspense } from "react";
import { AuthForm } from "@/components/shell/auth-form";
import { redirectIfSignedIn } from "../redirect-signed-in";

export const metadata: Metadata = { title: "Sign in · Kiln" };

export const dynamic = "force-dynamic";

export default async function SignInPage({ searchParams }: { searchParams: Promise<{ next?: string }> }) {
  await redirectIfSignedIn((await searchParams).next);
  return (
    <Suspense>
      <AuthForm mode="sign-in" />
    </Suspense>
  );
}
