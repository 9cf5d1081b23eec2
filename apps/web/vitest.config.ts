import { fileURLToPath } from "node:url";
import { defineProject } from "vitest/config";

// Unit tests of route handlers and components; the built app is tested over HTTP in test/.
export default defineProject({
  // The "@/…" imports of the app (tsconfig paths), for component tests.
  resolve: { alias: { "@": fileURLToPath(new URL(".", import.meta.url)) } },
  test: { name: "@kiln/web" },
});
