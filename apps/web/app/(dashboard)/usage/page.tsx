import type { Metadata } from "next";
import { UsagePage } from "@/components/usage/usage-page";

export const metadata: Metadata = { title: "Usage · Kiln" };

export default function Page() {
  return <UsagePage />;
}
