"use client";

import { createAuthClient } from "better-auth/react";

// Same origin as the dashboard: better-auth is mounted at /api/auth (app/api/auth/[...all]/route.ts).
export const authClient = createAuthClient();
