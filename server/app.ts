/**
 * A complete twilio-e2ee server as a Fastify instance: the plugin, the OpenAPI document and its
 * UI at /docs (SERVE_DOCS), logging with request ids, HTTP timeouts, and the error shape for
 * unknown routes everywhere.
 * Used by the standalone entry (main.ts) and by the tests; teams with their own Fastify app
 * register the plugin instead (server/plugin.ts).
 */
import { createHash } from 'node:crypto';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Config } from './config.js';
import { registerDemo, spaNotFoundHandler, type DemoOptions } from './demo.js';
import { clientErrorHandler, errorHandler, notFoundHandler } from './errors.js';
import { genReqId, loggerOptions, type LoggerSettings } from './logging.js';
import { twilioE2ee } from './plugin.js';
import type { Store } from './store/types.js';

export const DOCS_PATH = '/docs';

/**
 * Longest path parameter the router accepts (find-my-way counts the raw, still percent-encoded
 * characters): a conversation sid of 256 characters with every character percent-encoded. Above
 * this the answer is 414 in the error shape; below it the route's schema decides.
 */
export const MAX_PATH_PARAM_CHARS = 3 * 256;

/** REQUEST_TIMEOUT's default: a whole request (line, headers, body) must arrive within 30 s. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
/** The request line and headers must arrive within this (or the request timeout, if shorter). */
export const HEADERS_TIMEOUT_MS = 10_000;
/** An idle keep-alive connection closes after this; above the 60 s idle timeout of common load balancers. */
export const KEEP_ALIVE_TIMEOUT_MS = 72_000;
/** A socket with no traffic for this long during a request or answer (a reader that stopped reading) is closed. */
export const IDLE_SOCKET_TIMEOUT_MS = 60_000;
/** How often Node checks the request and headers timeouts (its default, 30 s, would let them run 30 s late). */
const TIMEOUT_CHECK_INTERVAL_MS = 1_000;

/**
 * Fastify (and Node http) timeout options for a request timeout: a body trickled in slowly is
 * answered 408 in the error shape (`clientErrorHandler`) once the timeout passes. WebSocket
 * connections (the relay) leave these behind at the upgrade.
 */
export function timeoutOptions(requestTimeoutMs: number) {
  const headersTimeout = Math.min(HEADERS_TIMEOUT_MS, requestTimeoutMs);
  return {
    requestTimeout: requestTimeoutMs,
    connectionTimeout: IDLE_SOCKET_TIMEOUT_MS,
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    http: { requestTimeout: requestTimeoutMs, headersTimeout, connectionsCheckingInterval: TIMEOUT_CHECK_INTERVAL_MS },
  };
}

/** The one inline style of Swagger UI (its logo's SVG), allowed by its hash in the docs' CSP. */
const SWAGGER_UI_LOGO_STYLE = '.logo_small_svg__cls-2{fill:#fff}.logo_small_svg__cls-3{fill:#85ea2d}';

/**
 * The Content-Security-Policy of /docs: the UI's own scripts, styles and images from this origin
 * only, no inline script, no framing, no forms, fetches only to this origin (the OpenAPI document).
 */
export const DOCS_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  `style-src 'self' 'sha256-${createHash('sha256').update(SWAGGER_UI_LOGO_STYLE).digest('base64')}'`,
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export interface BuildAppOptions {
  config: Config;
  store: Store;
  /** false for no logs; a stream and/or level to override the configured ones. */
  logger?: false | Partial<LoggerSettings>;
  /** Serve the built demo web client at "/" (server/demo.ts); off unless given. */
  demo?: DemoOptions;
}

/**
 * Fastify server options the plugin relies on but cannot set itself (they belong to the server):
 * teams mounting the plugin in their own app pass them to `Fastify({...serverOptions})`. The
 * timeouts are the defaults; `buildApp` applies REQUEST_TIMEOUT through `timeoutOptions`.
 */
export const serverOptions = {
  ...timeoutOptions(DEFAULT_REQUEST_TIMEOUT_MS),
  routerOptions: { maxParamLength: MAX_PATH_PARAM_CHARS },
  // Errors the router raises before any route (malformed percent-encoding, an over-long path
  // parameter): without this Fastify answers them in its own shape, quoting the raw path.
  frameworkErrors: errorHandler,
  // Malformed HTTP: answered in the error shape, logged without the raw request bytes.
  clientErrorHandler,
};

export async function buildApp({ config, store, logger = {}, demo }: BuildAppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger: logger === false ? false : loggerOptions({ level: config.logLevel, ...logger }),
    genReqId,
    bodyLimit: config.bodyLimit,
    trustProxy: trustProxyOption(config.trustProxy),
    ...serverOptions,
    ...timeoutOptions(config.requestTimeoutMs),
  });
  if (config.trustProxy === true) {
    app.log.warn('TRUST_PROXY=true: client addresses (and the session rate limit) come from X-Forwarded-For as any client sends it; list the proxies instead');
  }
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler(demo ? spaNotFoundHandler(notFoundHandler) : notFoundHandler);

  // Registered before the routes, so that it sees them all.
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'twilio-e2ee',
        version: '1.0.0',
        description: 'Card directory, tokens and keys for end-to-end encrypted Twilio Conversations. See docs/API.md.',
      },
      components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
    },
  });
  // The UI is a web page on the key service's origin: only when asked for, and under a strict CSP.
  if (config.serveDocs) {
    await app.register(async (docs) => {
      docs.addHook('onSend', async (_request, reply) => {
        reply.header('content-security-policy', DOCS_CSP);
      });
      await docs.register(fastifySwaggerUi, { routePrefix: DOCS_PATH, validatorUrl: false });
    });
  }
  // The standalone server keeps the demo default of the quick start (`npm start` with nothing set).
  await app.register(twilioE2ee, { config, store, demoMode: true });
  if (demo) await registerDemo(app, demo);
  // Echo the request id, so a client's report can be matched with the server log.
  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  return app;
}

/** Fastify's trustProxy for TRUST_PROXY; a hop count as proxy-addr counts hops (Fastify's types lack numbers). */
function trustProxyOption(setting: Config['trustProxy']): boolean | string | ((address: string, hop: number) => boolean) {
  return typeof setting === 'number' ? (_address, hop) => hop < setting : setting;
}
