import type { Metadata } from "next";
import { BuildDetailPage } from "@/components/builds/build-detail-page";

export const metadata: Metadata = { title: "Build · Kiln" };

export default async function Page({ params }: { params: Promise<{ buildId: string }> }) {
  const { buildId } = await params;
  return <BuildDetailPage buildId={buildId} />;
}
