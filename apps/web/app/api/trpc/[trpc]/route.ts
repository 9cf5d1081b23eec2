import { appRouter, createContext } from "@kiln/api";
import { fetchRequestHandler } from "@trpc/server/adapters/fetch";
import { services } from "@/lib/server/services";

// The dashboard's API: every procedure of packages/api over HTTP, with the session from the cookies.
const handler = (request: Request) =>
  fetchRequestHandler({
    endpoint: "/api/trpc",
    req: request,
    router: appRouter,
    createContext: () => createContext(services().deps, request),
    onError: ({ error, path }) => {
      // Expected failures (bad input, NOT_FOUND, FORBIDDEN) are answers, not server errors.
      if (error.code === "INTERNAL_SERVER_ERROR") console.error(`tRPC ${path ?? "?"} failed:`, error.cause ?? error);
    },
  });

export { handler as GET, handler as POST };
