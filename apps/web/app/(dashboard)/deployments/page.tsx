import type { Metadata } from "next";
import { DeploymentsPage } from "@/components/deployments/deployments-page";

export const metadata: Metadata = { title: "Deployments · Kiln" };

export default function Page() {
  return <DeploymentsPage />;
}
