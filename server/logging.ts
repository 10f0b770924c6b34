/**
 * Logger options (pino, through Fastify). What must never reach a log: bearer and Twilio tokens,
 * the Authorization header, keys and seeds, message and card bodies. So: bodies are never
 * logged (Fastify does not, and no route logs them), requests are logged by a serializer that
 * keeps only method, path, host and address, and these redact paths catch the rest should a
 * header or secret be logged by mistake. test/server/logs.test.ts scans a full run for them.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyRequest, FastifyServerOptions } from 'fastify';
import type { IncomingMessage } from 'node:http';
import type { LogLevel } from './config.js';

export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-twilio-signature"]',
  'req.headers["x-e2ee-device"]', // a device proof is replayable for minutes
  'res.headers["set-cookie"]',
  'headers.authorization',
  'authorization',
  'token',
  '*.token',
  'secret',
  '*.secret',
  'apiSecret',
  '*.apiSecret',
  'authToken',
  '*.authToken',
  'appKey',
  '*.appKey',
  'orgKey',
  '*.orgKey',
  'seed',
  '*.seed',
  'body',
  '*.body',
  // Node's HTTP parser errors carry the raw bytes received, Authorization header included.
  'err.rawPacket',
  '*.rawPacket',
];

/** Query parameters whose values are replaced in logged URLs (a client may put a token there). */
const SECRET_QUERY = /([?&](?:token|access_token|jwt|key|secret|signature)=)[^&#]*/gi;

export function redactUrl(url: string): string {
  return url.replace(SECRET_QUERY, '$1[redacted]');
}

const serializers = {
  req(request: FastifyRequest) {
    return { method: request.method, url: redactUrl(request.url), host: request.host, remoteAddress: request.ip };
  },
};

/** A request id from a trusted-looking X-Request-Id (a load balancer's), else a fresh UUID. */
export function genReqId(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && /^[A-Za-z0-9._:-]{1,128}$/.test(given) ? given : randomUUID();
}

export interface LoggerSettings {
  level: LogLevel;
  /** Where the JSON lines go (default stdout); tests pass a capturing stream. */
  stream?: { write(line: string): void };
}

/** The `logger` option for Fastify(). */
export function loggerOptions(settings: LoggerSettings): NonNullable<FastifyServerOptions['logger']> {
  return {
    level: settings.level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    serializers,
    ...(settings.stream ? { stream: settings.stream } : {}),
  };
}
