// The dashboard's side navigation, in display order. Each area's pages live under
// app/(dashboard)/<href>/; an area owned by another part of the product (deployments, playground,
// usage, billing) adds its page folder there and keeps its entry here. `minRole` hides an entry
// from members whose role cannot use the page (the server enforces the same rule).
export type NavRole = "owner" | "admin" | "member";

export type NavItem = {
  href: string;
  label: string;
  minRole?: NavRole;
};

export const navigation: NavItem[] = [
  { href: "/models", label: "Models" },
  { href: "/builds", label: "Builds" },
  { href: "/deployments", label: "Deployments" },
  { href: "/playground", label: "Playground" },
  { href: "/usage", label: "Usage" },
  { href: "/api-keys", label: "API keys" },
  { href: "/billing", label: "Billing", minRole: "admin" },
  { href: "/audit-log", label: "Audit log", minRole: "admin" },
  { href: "/members", label: "Members" },
];

const rank: Record<NavRole, number> = { member: 0, admin: 1, owner: 2 };

export function canSee(item: NavItem, role: NavRole | undefined): boolean {
  if (!item.minRole) return true;
  return role !== undefined && rank[role] >= rank[item.minRole];
}

export function isAtLeast(role: NavRole | undefined, minimum: NavRole): boolean {
  return role !== undefined && rank[role] >= rank[minimum];
}
