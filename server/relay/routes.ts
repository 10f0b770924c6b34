/**
 * Mounts the local conversations relay at ApiPath.relay, in local mode only (no Twilio
 * credentials configured). The relay authenticates each connection with a relay token from
 * GET /v1/twilio-token, sent in the first frame.
 */
import websocket from '@fastify/websocket';
import type { FastifyInstance } from 'fastify';
import { ApiPath } from '../../shared/api.js';
import { E2EEError, ErrorCode } from '../../shared/errors.js';
import { RELAY_LIMITS } from '../../shared/relay-protocol.js';
import { errorBody } from '../errors.js';
import { verifyRelayToken } from '../relay-token.js';
import { deriveAppSecret, RELAY_MEDIA_URL_SECRET_LABEL } from '../secrets.js';
import { RelayHub } from './hub.js';
import { RelayMediaService } from './media.js';
import relayMediaRoutes from './media-routes.js';

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

/** Refuses an app's @fastify/websocket whose frames may be larger than the relay's (ws allows 100 MiB by default). */
function checkFrameLimit(maxPayload: number | undefined): void {
  if (maxPayload !== undefined && maxPayload <= RELAY_LIMITS.frameBytes) return;
  const problem = `the app's @fastify/websocket accepts frames of ${maxPayload ?? 'ws\'s default'} bytes: register it with options.maxPayload at most ${RELAY_LIMITS.frameBytes} (the local relay's frame limit)`;
  throw new E2EEError(ErrorCode.CONFIG_INVALID, `twilio-e2ee: ${problem}`, { details: { problems: [problem] } });
}

export default async function relayRoutes(app: FastifyInstance): Promise<void> {
  const { config, store, relayTokenSecret, appKey, prefix } = app.e2ee;
  if (config.twilio !== null) {
    app.decorate('relayHub', null);
    return;
  }
  // An app that registered @fastify/websocket itself keeps it (a second registration would fight
  // over the server's upgrades), if its frame limit holds the relay's.
  const reuseWebsocket = app.hasDecorator('websocketServer');
  if (reuseWebsocket) checkFrameLimit(app.websocketServer.options.maxPayload);
  const media = new RelayMediaService(store, deriveAppSecret(appKey, RELAY_MEDIA_URL_SECRET_LABEL), prefix, (err) =>
    app.log.warn({ err: err.message }, 'relay media sweep failed'),
  );
  const hub = new RelayHub(store, (token) => verifyRelayToken(relayTokenSecret, token), app.log, media, {
    rateLimitPerMinute: config.rateLimit.relay,
    authTimeoutMs: config.relayAuthTimeoutMs,
  });
  app.decorate('relayHub', hub);
  // The decoration stays inside the plugin's scope; the HTTP server is the same everywhere.
  hubs.set(app.server, hub);
  if (!reuseWebsocket) await app.register(websocket, { options: { maxPayload: RELAY_LIMITS.frameBytes } });
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
  // In a scope of their own: the upload route streams every body type unparsed.
  await app.register(relayMediaRoutes, { media, tokenSecret: relayTokenSecret, rateLimit: (identity: string) => hub.rateLimit(identity) });
  media.start();
  app.addHook('preClose', async () => {
    media.stop();
    hub.close();
  });
}
