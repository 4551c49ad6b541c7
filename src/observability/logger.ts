import pino, { type DestinationStream, type Logger } from 'pino';

export type { Logger };

/**
 * Request logs carry ids, routes, statuses and timings only. Redaction is the second line of defence for
 * anything that might still carry a secret or a body by mistake.
 */
export const REDACT_PATHS = [
  'authorization',
  'headers.authorization',
  'req.headers.authorization',
  'req.headers.cookie',
  'adminToken',
  'apiKey',
  'key',
  'secret',
  'body',
  'image',
  'images',
  'input_reference',
  'config.upstreamApiKeys',
  'config.adminToken',
  'config.staticApiKeys',
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'grok-video-gateway' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}
