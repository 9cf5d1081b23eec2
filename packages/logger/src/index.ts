import { type DestinationStream, type Logger, pino } from "pino";

export type { Logger } from "pino";

export type LoggerOptions = {
  /** The process or component, e.g. "gateway"; every line carries it as `service`. */
  service: string;
  level?: string;
  /** Where lines go; stdout by default. Tests pass a stream to read what was logged. */
  destination?: DestinationStream;
};

/**
 * One JSON object per line on stdout, the format every log collector reads. Pretty printing is
 * left to the reader (`| npx pino-pretty`) so that what runs in development is what runs in production.
 */
export function createLogger({ service, level = "info", destination }: LoggerOptions): Logger {
  return pino(
    {
      level,
      base: { service, pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      // Secrets that may pass through request logs are never written out.
      redact: { paths: ["req.headers.authorization", "req.headers.cookie", "*.password"], censor: "[redacted]" },
    },
    destination,
  );
}
