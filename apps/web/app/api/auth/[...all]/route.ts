import { auth } from "@kiln/auth";
import { toNextJsHandler } from "better-auth/next-js";

// better-auth's endpoints (sign-up, sign-in, sign-out, session) under /api/auth/*.
export const { GET, POST } = toNextJsHandler(auth);
