import Link from "next/link";
import type { ReactNode } from "react";

export default function AuthLayout({ children }: { children: ReactNode }) {
  return (
    <main className="auth-page">
      <Link href="/" className="brand auth-brand">
        <span className="mark" aria-hidden="true" />
        Kiln
      </Link>
      <div className="auth-card">{children}</div>
    </main>
  );
}
