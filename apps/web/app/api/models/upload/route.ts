import { createContext, uploadModel } from "@kiln/api";
import { services } from "@/lib/server/services";

// The body is the .onnx file itself, streamed through to storage as it arrives (never buffered
// whole); the handler checks the session, the org, the plan's size limit and the model.
export async function POST(request: Request): Promise<Response> {
  const ctx = await createContext(services().deps, request);
  return uploadModel(request, ctx);
}
