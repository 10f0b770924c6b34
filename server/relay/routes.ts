/**
 * Mounts the local conversations relay at ApiPath.relay, in local mode only (no Twilio
 * credentials configured). The relay authenticates each connection with a relay token from
 * GET /v1/twilio-token, sent in the first frame.
 */
import websocket from '@fastify/websocket';
import type { FastifyInstance } from 'fastify';
import { ApiPath } from '../../shared/api.js';
import { ErrorCode } from '../../shared/errors.js';
import { RELAY_LIMITS } from '../../shared/relay-protocol.js';
import { errorBody } from '../errors.js';
import { verifyRelayToken } from '../relay-token.js';
import { RelayHub } from './hub.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The local relay of this instance; null in mode "twilio". */
    relayHub: RelayHub | null;
  }
}

const hubs = new WeakMap<FastifyInstance['server'], RelayHub>();

/** The relay of the app serving on `server` (its stats, its connected identities), if any. */
export function relayHubOf(server: FastifyInstance['server']): RelayHub | undefined {
  return hubs.get(server);
}

export default async function relayRoutes(app: FastifyInstance): Promise<void> {
  const { config, store, relayTokenSecret } = app.e2ee;
  if (config.twilio !== null) {
    app.decorate('relayHub', null);
    return;
  }
  const hub = new RelayHub(store, (token) => verifyRelayToken(relayTokenSecret, token), app.log, {
    rateLimitPerMinute: config.rateLimit.relay,
    authTimeoutMs: config.relayAuthTimeoutMs,
  });
  app.decorate('relayHub', hub);
  // The decoration stays inside the plugin's scope; the HTTP server is the same everywhere.
  hubs.set(app.server, hub);
  await app.register(websocket, { options: { maxPayload: RELAY_LIMITS.frameBytes } });
  app.route({
    method: 'GET',
    url: ApiPath.relay,
    schema: { hide: true },
    wsHandler: (socket) => hub.accept(socket),
    // A plain HTTP request (no WebSocket upgrade) gets the error shape, not @fastify/websocket's empty 404.
    // 426 Upgrade Required, a status of this route alone: the code stays BAD_REQUEST.
    handler: async (_request, reply) =>
      reply
        .code(426)
        .header('upgrade', 'websocket')
        .send(errorBody(ErrorCode.BAD_REQUEST, 'this is the local relay\'s WebSocket endpoint: connect with a WebSocket upgrade')),
  });
  app.addHook('preClose', async () => hub.close());
}
