import { createContext, downloadEngine } from "@kiln/api";
import { services } from "@/lib/server/services";

// A succeeded build's engine file, streamed from storage to members of the build's organization.
export async function GET(request: Request, { params }: { params: Promise<{ buildId: string }> }): Promise<Response> {
  const { buildId } = await params;
  const ctx = await createContext(services().deps, request);
  return downloadEngine(ctx, buildId);
}
