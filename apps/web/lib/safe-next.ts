/** Same-site paths only, so a crafted ?next= cannot send people elsewhere after signing in. */
export function safeNext(next: string | null | undefined): string {
  return next?.startsWith("/") && !next.startsWith("//") ? next : "/models";
}
