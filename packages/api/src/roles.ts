import type { MembershipRole } from "@kiln/db";

const RANK: Record<MembershipRole, number> = { member: 0, admin: 1, owner: 2 };

/** True when `role` is at least `minimum` on the ladder member < admin < owner. */
export function hasRole(role: MembershipRole, minimum: MembershipRole): boolean {
  return RANK[role] >= RANK[minimum];
}
