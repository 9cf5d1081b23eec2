export { buildGateway, type GatewayConfig } from "./build-gateway.ts";
