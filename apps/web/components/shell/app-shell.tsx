"use client";

import Link from "next/link";
import { usePathname, useRouter } from "next/navigation";
import { type ReactNode, useEffect, useState } from "react";
import { authClient } from "@/lib/auth-client";
import { canSee, navigation } from "@/lib/navigation";
import { useActiveOrg } from "./active-org";
import { OrgSwitcher } from "./org-switcher";

type ShellUser = { name: string; email: string };

/** The signed-in frame: a side bar (a drawer on small screens) with the org switcher and the nav. */
export function AppShell({ user, children }: { user: ShellUser; children: ReactNode }) {
  const pathname = usePathname();
  const router = useRouter();
  const { org } = useActiveOrg();
  const [isMenuOpen, setMenuOpen] = useState(false);

  // Following a link closes the drawer.
  // biome-ignore lint/correctness/useExhaustiveDependencies: runs on navigation only
  useEffect(() => setMenuOpen(false), [pathname]);

  const signOut = async () => {
    await authClient.signOut();
    router.replace("/sign-in");
    router.refresh();
  };

  return (
    <div className="shell">
      <a href="#content" className="skip-link">
        Skip to content
      </a>
      <header className="shell-topbar">
        <Link href="/models" className="brand shell-brand">
          <span className="mark" aria-hidden="true" />
          Kiln
        </Link>
        <button
          type="button"
          className="ui-button ui-button--ghost shell-menu-button"
          aria-expanded={isMenuOpen}
          aria-controls="shell-sidebar"
          onClick={() => setMenuOpen((open) => !open)}
        >
          Menu
        </button>
      </header>
      <aside id="shell-sidebar" className={isMenuOpen ? "shell-sidebar is-open" : "shell-sidebar"}>
        <Link href="/models" className="brand shell-brand shell-brand--side">
          <span className="mark" aria-hidden="true" />
          Kiln
        </Link>
        <OrgSwitcher />
        <nav aria-label="Dashboard">
          <ul className="shell-nav">
            {navigation
              .filter((item) => canSee(item, org?.role))
              .map((item) => {
                const isCurrent = pathname === item.href || pathname.startsWith(`${item.href}/`);
                return (
                  <li key={item.href}>
                    {/* No prefetch: dashboard pages render per request anyway, and an entry whose page
                        another part of the product has not shipped yet would 404 in the console. */}
                    <Link href={item.href} prefetch={false} aria-current={isCurrent ? "page" : undefined}>
                      {item.label}
                    </Link>
                  </li>
                );
              })}
          </ul>
        </nav>
        <div className="shell-user">
          <div className="shell-user__who">
            <strong>{user.name}</strong>
            <span>{user.email}</span>
          </div>
          <button type="button" className="ui-button ui-button--ghost ui-button--sm" onClick={signOut}>
            Sign out
          </button>
        </div>
      </aside>
      <main id="content" className="shell-main" tabIndex={-1}>
        {children}
      </main>
    </div>
  );
}

/** The title row of a dashboard page: heading, a line of context, and the page's main actions. */
export function PageHeader({
  title,
  description,
  actions,
}: {
  title: ReactNode;
  description?: ReactNode;
  actions?: ReactNode;
}) {
  return (
    <div className="page-header">
      <div>
        <h1>{title}</h1>
        {description ? <p className="page-description">{description}</p> : null}
      </div>
      {actions ? <div className="page-actions">{actions}</div> : null}
    </div>
  );
}
