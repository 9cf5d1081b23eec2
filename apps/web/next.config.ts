import { fileURLToPath } from "node:url";
import type { NextConfig } from "next";

// The monorepo root, so Next traces and watches workspace packages instead of guessing its root.
const root = fileURLToPath(new URL("../..", import.meta.url));

const config: NextConfig = {
  reactStrictMode: true,
  poweredByHeader: false,
  outputFileTracingRoot: root,
  turbopack: { root },
};

export default config;
