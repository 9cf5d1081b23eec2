import type { Metadata } from "next";
import { BuildsPage } from "@/components/builds/builds-page";

export const metadata: Metadata = { title: "Builds · Kiln" };

export default function Page() {
  return <BuildsPage />;
}
