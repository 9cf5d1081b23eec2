import { getSession } from "@kiln/auth";
import { headers } from "next/headers";
import { redirect } from "next/navigation";
import { safeNext } from "@/lib/safe-next";

/** Someone already signed in has nothing to do on the sign-in or sign-up page: go where they were headed. */
export async function redirectIfSignedIn(next: string | undefined): Promise<void> {
  if (await getSession(await headers())) redirect(safeNext(next));
}
