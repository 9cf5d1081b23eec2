import { defineProject } from "vitest/config";

// Unit tests of route handlers and components; the built app is tested over HTTP in test/.
export default defineProject({ test: { name: "@kiln/web" } });
