import type { Metadata } from "next";
import { Suspense } from "react";
import { AuthForm } from "@/components/shell/auth-form";
import { redirectIfSignedIn } from "../redirect-signed-in";

export const metadata: Metadata = { title: "Create an account · Kiln" };

export const dynamic = "force-dynamic";

export default async function SignUpPage({ searchParams }: { searchParams: Promise<{ next?: string }> }) {
  await redirectIfSignedIn((await searchParams).next);
  return (
    <Suspense>
      <AuthForm mode="sign-up" />
    </Suspense>
  );
}
