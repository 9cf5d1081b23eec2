import { createContext, uploadCalibration } from "@kiln/api";
import { services } from "@/lib/server/services";

// The body is the calibration .npz itself, streamed through to storage as it arrives (never
// buffered whole); the handler checks the session, the org, the version, the plan's size limit,
// then parses the arrays and checks them against the model's inputs.
export async function POST(request: Request): Promise<Response> {
  const ctx = await createContext(services().deps, request);
  return uploadCalibration(request, ctx);
}
