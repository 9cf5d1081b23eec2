import type { Metadata } from "next";
import { ModelDetailPage } from "@/components/models/model-detail-page";

export const metadata: Metadata = { title: "Model · Kiln" };

export default async function Page({ params }: { params: Promise<{ modelId: string }> }) {
  const { modelId } = await params;
  return <ModelDetailPage modelId={modelId} />;
}
