/**
 * The twilio-e2ee Fastify plugin: mount it in your own Fastify app to serve the card directory,
 * token and key routes (docs/API.md).
 *
 *   await app.register(twilioE2ee, { config: await loadConfig(), store: await openStore(...), prefix: '/e2ee' });
 *
 * What it adds to your app (fastify-plugin, not encapsulated): `app.e2ee` (config, store, keys,
 * OrgCard, `authenticate`, `prefix`), `request.e2eeIdentity`, and @fastify/jwt under the `e2ee`
 * namespace (so it coexists with your own @fastify/jwt). Every name is prefixed, so none collides
 * with the app's own `request.identity` or `app.authenticate`. Everything else lives in an
 * encapsulated scope that only affects its own routes: the strict TypeBox validator, the
 * `{"error": {"code","message"}}` error handler, the body limit, rate limits, and the 404 handler
 * for unknown /v1 paths.
 */
import fastifyJwt, { type JWT, type JwtVerifyFunction } from '@fastify/jwt';
import { E2EEError, ErrorCode } from '../shared/errors.js';
import fastifyRateLimit from '@fastify/rate-limit';
import { TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox';
import type { FastifyBaseLogger, FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { MAX_IDENTITY_CHARS } from '../shared/limits.js';
import type { AppKey, CardWire, OrgKey } from '../shared/index.js';
import type { Config } from './config.js';
import { useNodeCrypto } from './crypto-backend.js';
import { errorHandler, notFoundHandler } from './errors.js';
import { TransparencyLog, type SubmitToWitnesses } from './log.js';
import { witnessHook } from './witness/log-client.js';
import { loadOrgCard } from './org-card.js';
import { rateLimitError } from './rate-limits.js';
import { isStorableText } from './storable-text.js';
import { relayTokenSecret } from './relay-token.js';
import cardRoutes from './routes/cards.js';
import deviceRequestRoutes from './routes/device-requests.js';
import healthRoutes from './routes/health.js';
import keyRoutes from './routes/keys.js';
import sessionRoutes from './routes/sessions.js';
import tokenRoutes from './routes/tokens.js';
import relayRoutes from './relay/routes.js';
import historyRoutes from './routes/history.js';
import logRoutes from './routes/log.js';
import preEventRoutes from './routes/pre-event.js';
import { STORE_METHODS } from './store/index.js';
import type { Store } from './store/types.js';

export interface TwilioE2eeOptions {
  config: Config;
  store: Store;
  /**
   * Mount every route under this path, e.g. '/e2ee' (Fastify's `prefix` option, which a
   * fastify-plugin would otherwise ignore). Adds to the prefix of the scope it is registered in.
   */
  prefix?: string;
  /** Serve GET /healthz and /readyz (default true); false when the app has its own probes there. */
  healthRoutes?: boolean;
  /**
   * true accepts the demo mode a configuration without any auth setting falls back to. Without
   * it the plugin runs demo mode only when DEMO_MODE=true asked for it.
   */
  demoMode?: boolean;
  /**
   * The organization's rule for who may read a conversation's backed-up history. By default every
   * participant may (anyone added to a conversation reads what was said before). Called before a
   * history page is served, after the participant and card checks: false answers 403 FORBIDDEN;
   * a throw (or an answer that is not a boolean) answers 503 HISTORY_ACCESS_CHECK_FAILED and is logged.
   */
  canReadHistory?: CanReadHistory;
  /**
   * Hands each new checkpoint of the card transparency log to the witnesses and resolves with
   * their cosignature lines, which the service then serves with it. None by default.
   */
  logWitness?: SubmitToWitnesses | undefined;
}

/** Who asks for a history page: the authenticated identity and the card the rewraps are for. */
export interface HistoryReader {
  identity: string;
  cardId: string;
}

/** The plugin's `canReadHistory` option: whether `reader` may read `conversationSid`'s history. */
export type CanReadHistory = (reader: HistoryReader, conversationSid: string) => boolean | Promise<boolean>;

/** The default rule: every participant may read the conversation's history. */
const everyParticipant: CanReadHistory = () => true;

/** What the plugin decorates the Fastify instance with, as `app.e2ee`. */
export interface E2eeContext {
  config: Config;
  store: Store;
  appKey: AppKey;
  orgKey: OrgKey | null;
  /** null when the instance holds no OrgKey (history disabled). */
  orgCard: CardWire | null;
  /** Key of local relay tokens (server/relay-token.ts). */
  relayTokenSecret: Uint8Array;
  /** preHandler: verifies the bearer app token, sets `request.e2eeIdentity`; 401 otherwise. */
  authenticate(request: FastifyRequest, reply: FastifyReply): Promise<void>;
  /** Signs an app token for `identity` (demo-mode sessions); null when the auth key cannot sign. */
  signSession: ((identity: string) => string) | null;
  /** The path the routes are under ('' at the root): the enclosing scope's prefix and the `prefix` option. */
  prefix: string;
  /** The `canReadHistory` option (every participant when not given). */
  canReadHistory: CanReadHistory;
  /** The card transparency log: checkpoints, proofs, cosignatures (server/log.ts). */
  log: TransparencyLog;
}

declare module 'fastify' {
  interface FastifyInstance {
    e2ee: E2eeContext;
  }
  interface FastifyRequest {
    /** The authenticated Twilio identity (the app token's `sub`); '' until `authenticate` ran. */
    e2eeIdentity: string;
    e2eeJwtVerify: JwtVerifyFunction;
  }
}

/**
 * The route modules, each a plugin registered in the plugin's scope. A new capability is one
 * module in server/routes/ and one line here.
 */
const ROUTE_MODULES: FastifyPluginAsync[] = [sessionRoutes, tokenRoutes, cardRoutes, deviceRequestRoutes, keyRoutes, logRoutes, relayRoutes, historyRoutes, preEventRoutes];

const JWT_NAMESPACE = 'e2ee';
/** Clock skew tolerated on app token `exp`/`nbf`, seconds (identity providers' clocks drift). */
const JWT_CLOCK_TOLERANCE_SECONDS = 30;


/** A prefix: path segments of unreserved characters, no trailing slash (Fastify adds none either). */
const PREFIX_PATTERN = /^(\/[A-Za-z0-9._~-]+)+$/;

/** Checks the options before anything is decorated, naming what is wrong. */
function checkOptions(options: unknown): Required<Omit<TwilioE2eeOptions, 'logWitness'>> & Pick<TwilioE2eeOptions, 'logWitness'> {
  const { config, store, prefix = '', healthRoutes = true, demoMode = false, canReadHistory = everyParticipant, logWitness } = (options ?? {}) as Partial<TwilioE2eeOptions>;
  if (typeof config !== 'object' || config === null) throw new TypeError('twilio-e2ee: options.config is required (use loadConfig())');
  if (!(config.appKey?.secretKey instanceof Uint8Array) || typeof config.auth?.key !== 'string' || typeof config.rateLimit !== 'object') {
    throw new TypeError('twilio-e2ee: options.config is not a Config (use loadConfig())');
  }
  if (typeof store !== 'object' || store === null) throw new TypeError('twilio-e2ee: options.store is required (use openStore())');
  const missing = STORE_METHODS.filter((name) => typeof store[name] !== 'function');
  if (missing.length > 0) throw new TypeError(`twilio-e2ee: options.store does not implement Store (missing ${missing.join(', ')})`);
  if (typeof prefix !== 'string' || (prefix !== '' && !PREFIX_PATTERN.test(prefix))) {
    throw new TypeError(`twilio-e2ee: options.prefix must be a path like "/e2ee" (no trailing slash), got ${JSON.stringify(prefix)}`);
  }
  if (typeof healthRoutes !== 'boolean') throw new TypeError('twilio-e2ee: options.healthRoutes must be true or false');
  if (typeof demoMode !== 'boolean') throw new TypeError('twilio-e2ee: options.demoMode must be true or false');
  if (typeof canReadHistory !== 'function') throw new TypeError('twilio-e2ee: options.canReadHistory must be a function (reader, conversationSid) => boolean');
  if (logWitness !== undefined && typeof logWitness !== 'function') throw new TypeError('twilio-e2ee: options.logWitness must be a function (submission) => Promise<string[]>');
  if (typeof config.log?.key?.sign !== 'function') throw new TypeError('twilio-e2ee: options.config is not a Config (use loadConfig())');
  // An app that forgot its auth settings must not come up accepting anyone as anyone.
  if (config.demoModeDefaulted && !demoMode) {
    const problem =
      'no AUTH_JWT_SECRET or AUTH_JWT_PUBLIC_KEY is set, so the configuration fell back to demo mode (anyone may act as anyone): ' +
      'set one of them, or ask for the demo with DEMO_MODE=true or the plugin option demoMode: true';
    throw new E2EEError(ErrorCode.CONFIG_INVALID, `twilio-e2ee: ${problem}`, { details: { problems: [problem] } });
  }
  return { config, store, prefix, healthRoutes, demoMode, canReadHistory, logWitness };
}

/** The witnesses of LOG_WITNESSES as the log's hook (server/witness/log-client.ts), or none. */
function configuredWitnesses(config: Config, logger: FastifyBaseLogger, consistencyProof: (from: number, to: number) => Promise<Uint8Array[]>): SubmitToWitnesses | undefined {
  const { witnesses, witnessTimeoutMs } = config.log;
  if (witnesses.length === 0) return undefined;
  return witnessHook({
    witnesses,
    consistencyProof,
    timeoutMs: witnessTimeoutMs,
    onOutcome: (outcome, size) => {
      if (!outcome.ok) logger.warn({ witness: outcome.url, code: outcome.error.code, size }, 'witness did not cosign');
    },
  });
}

/** The start-up summary: modes, store and where the keys come from, never a key or a secret. */
function describeConfiguration(config: Config, store: Store, prefix: string): Record<string, unknown> {
  return {
    mode: config.twilio ? 'twilio' : 'local',
    demoMode: config.demoMode,
    production: config.production,
    store: store.kind,
    prefix: prefix || '/',
    appKeyId: config.appKey.appKeyId,
    appKeySource: config.keySource.appKey,
    orgKeySource: config.keySource.orgKey,
    history: config.orgKey ? 'enabled' : 'disabled (no ORG_KEY)',
    previousOrgKeys: config.previousOrgKeys.length,
    auth: `${config.auth.algorithm}, ${config.auth.source}`,
    logOrigin: config.log.origin,
    logKeySource: config.log.keySource,
    logWitnesses: config.log.witnesses.length,
    publicUrl: config.publicUrl,
  };
}

async function e2eePlugin(fastify: FastifyInstance, options: TwilioE2eeOptions): Promise<void> {
  const { config, store, prefix: ownPrefix, healthRoutes: withHealthRoutes, canReadHistory, logWitness } = checkOptions(options);
  const prefix = fastify.prefix + ownPrefix;
  // Ed25519 signing and X25519 on OpenSSL from here on (same bytes, 2-3x faster than libsodium's
  // WebAssembly here: every registration signs once, every history message costs two X25519).
  useNodeCrypto();
  const orgCard = config.orgKey ? await loadOrgCard(store, config.appKey, config.orgKey, config.orgName) : null;
  const log: TransparencyLog = new TransparencyLog(store, config.log, { logger: fastify.log, witness: logWitness ?? configuredWitnesses(config, fastify.log, (a, b) => log.consistencyProof(a, b)) });
  await log.start();
  fastify.addHook('onClose', async () => log.stop());

  const { auth } = config;
  await fastify.register(fastifyJwt, {
    namespace: JWT_NAMESPACE,
    jwtVerify: 'e2eeJwtVerify',
    jwtSign: 'e2eeJwtSign',
    jwtDecode: 'e2eeJwtDecode',
    decoratorName: 'e2eeJwtPayload',
    // A public key never signs; giving it as `public` keeps @fastify/jwt from making a signer.
    secret: auth.canSign ? auth.key : { public: auth.key },
    verify: {
      algorithms: [auth.algorithm],
      requiredClaims: ['sub', 'exp'],
      clockTolerance: JWT_CLOCK_TOLERANCE_SECONDS * 1000, // fast-jwt takes ms here
      ...(auth.issuer !== null ? { allowedIss: auth.issuer } : {}),
      ...(auth.audience !== null ? { allowedAud: auth.audience } : {}),
    },
    sign: {
      algorithm: auth.algorithm,
      expiresIn: config.sessionTtl, // seconds (@fastify/jwt converts numbers to fast-jwt's ms)
      ...(auth.issuer !== null ? { iss: auth.issuer } : {}),
      ...(auth.audience !== null ? { aud: auth.audience } : {}),
    },
  });
  // With a namespace, @fastify/jwt hangs its decorator under fastify.jwt[namespace] (untyped).
  const jwt = (fastify.jwt as unknown as Record<string, JWT>)[JWT_NAMESPACE]!;

  async function authenticate(request: FastifyRequest): Promise<void> {
    let payload: { sub?: unknown };
    try {
      payload = await request.e2eeJwtVerify<{ sub?: unknown }>();
    } catch (err) {
      // fast-jwt formats the date of a rejected exp/nbf with toISOString, which throws a
      // RangeError (a 500) when the claim is out of Date's range, e.g. exp = -1e20.
      if (err instanceof RangeError) throw new E2EEError(ErrorCode.UNAUTHORIZED, 'token "exp" or "nbf" is out of range');
      throw err;
    }
    const sub = payload.sub;
    // An identity the store cannot hold exactly (NUL, a lone surrogate) is no Twilio identity either.
    if (typeof sub !== 'string' || sub.length === 0 || [...sub].length > MAX_IDENTITY_CHARS || !isStorableText(sub)) {
      throw new E2EEError(ErrorCode.UNAUTHORIZED, `token "sub" must be a Twilio identity of 1..${MAX_IDENTITY_CHARS} characters (no NUL, well-formed Unicode)`);
    }
    request.e2eeIdentity = sub;
  }

  fastify.decorateRequest('e2eeIdentity', '');
  fastify.decorate('e2ee', {
    config,
    store,
    appKey: config.appKey,
    orgKey: config.orgKey,
    orgCard,
    relayTokenSecret: relayTokenSecret(config.appKey),
    authenticate,
    signSession: auth.canSign ? (identity: string) => jwt.sign({ sub: identity }) : null,
    prefix,
    canReadHistory,
    log,
  } satisfies E2eeContext);

  fastify.log.info(describeConfiguration(config, store, prefix), 'twilio-e2ee configured');
  if (config.demoMode) {
    fastify.log.warn(`twilio-e2ee DEMO MODE: POST ${prefix}/v1/session issues tokens for any identity; never expose this to real users`);
  }

  const routeModules = withHealthRoutes ? [healthRoutes, ...ROUTE_MODULES] : ROUTE_MODULES;
  await fastify.register(async function e2eeRoutes(scope) {
    // Strict validation for this scope only: a JSON body is never coerced (a number is not an identity).
    scope.setValidatorCompiler(TypeBoxValidatorCompiler);
    scope.setErrorHandler(errorHandler);
    scope.addHook('onRoute', (route) => {
      route.bodyLimit ??= config.bodyLimit;
    });
    await scope.register(fastifyRateLimit, { global: false, errorResponseBuilder: rateLimitError });
    // Unknown /v1 paths get our error shape; the rest of the host app keeps its own 404.
    await scope.register(async (v1) => v1.setNotFoundHandler(notFoundHandler), { prefix: '/v1' });
    for (const routes of routeModules) await scope.register(routes);
  }, { prefix: ownPrefix });
}

/** The plugin. Options: `{ config, store, prefix?, healthRoutes?, demoMode?, canReadHistory? }` (TwilioE2eeOptions). */
export const twilioE2ee = fp(e2eePlugin, { fastify: '5.x', name: 'twilio-e2ee' });
export default twilioE2ee;
