import type { Metadata } from "next";
import { NewBuildPage } from "@/components/builds/new-build-page";

export const metadata: Metadata = { title: "New build · Kiln" };

export default async function Page({ searchParams }: { searchParams: Promise<{ modelVersionId?: string }> }) {
  const { modelVersionId } = await searchParams;
  return <NewBuildPage modelVersionId={modelVersionId} />;
}
