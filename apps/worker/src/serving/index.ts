export { type EngineSource, fsEngineSource } from "./engine-source.ts";
export { markDeploymentFailed, startServingFromConfig } from "./from-config.ts";
export { type HostedReplica, ReplicaHost } from "./replica-host.ts";
export { type RunningServing, type ServingOptions, startServing } from "./start-serving.ts";
