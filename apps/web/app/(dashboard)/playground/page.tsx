import type { Metadata } from "next";
import { PlaygroundPage } from "@/components/playground/playground-page";

export const metadata: Metadata = { title: "Playground · Kiln" };

export default function Page() {
  return <PlaygroundPage />;
}
