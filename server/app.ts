/**
 * A complete twilio-e2ee server as a Fastify instance: the plugin, the OpenAPI document and its
 * UI at /docs, logging with request ids, and the error shape for unknown routes everywhere.
 * Used by the standalone entry (main.ts) and by the tests; teams with their own Fastify app
 * register the plugin instead (server/plugin.ts).
 */
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
 * teams mounting the plugin in their own app pass them to `Fastify({...serverOptions})`.
 */
export const serverOptions = {
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
    trustProxy: config.trustProxy,
    ...serverOptions,
  });
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
  await app.register(fastifySwaggerUi, { routePrefix: DOCS_PATH });
  await app.register(twilioE2ee, { config, store });
  if (demo) await registerDemo(app, demo);
  // Echo the request id, so a client's report can be matched with the server log.
  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  return app;
}
