export { type Env, ZEnv } from "./env.ts";
export { type Config, ConfigError, loadConfig } from "./load-config.ts";
