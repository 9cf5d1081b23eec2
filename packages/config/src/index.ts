export { type Env, ZEnv } from "./env.ts";
export { type Config, ConfigError, loadConfig, loadConfigOrExit } from "./load-config.ts";
