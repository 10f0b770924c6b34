/**
 * Server configuration (docs/API.md "Configuration"): read from the environment, validated once at
 * start-up. Every problem names its variable, and all problems are reported together, so an
 * operator fixes a broken .env in one pass.
 *
 * Modes:
 * - local demo (nothing set): keys generated once into DATA_DIR/keys.json, POST /v1/session
 *   issues tokens for any identity. Never for production. The standalone server runs it as its
 *   quick start; the plugin refuses this fallback unless asked (`demoModeDefaulted`).
 * - production (NODE_ENV=production): explicit APP_KEY, LOG_KEY and an auth secret or public key
 *   are required, and DEMO_MODE must be off.
 */
import { E2EEError, ErrorCode } from '../shared/errors.js';
import { ready, type AppKey, type OrgKey } from '../shared/index.js';
import { EnvReader, loadPublicUrl, loadStorage, loadTrustProxy, loadTwilio, type Env } from './config-env.js';
import { loadAuth, loadKeys, type JwtAlgorithm } from './config-keys.js';
import { loadLogConfig, type LogConfig } from './config-log.js';

export { JWT_ALGORITHMS, MIN_JWT_SECRET_CHARS, loadOrCreateKeyFile, type JwtAlgorithm } from './config-keys.js';
export { defaultLogOrigin, type LogConfig } from './config-log.js';

export const NEW_DEVICE_POLICIES = ['approval', 'open'] as const;
export type NewDevicePolicy = (typeof NEW_DEVICE_POLICIES)[number];

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Twilio access tokens live at most 24 hours (Twilio's own limit). */
export const MAX_TWILIO_TOKEN_TTL = 86_400;

export interface AuthConfig {
  /** The only algorithm accepted: pinning it rules out algorithm-confusion attacks. */
  algorithm: JwtAlgorithm;
  /** HS256 shared secret, or a PEM public key. */
  key: string;
  /** Whether this server can sign tokens with `key` (HS256): needed by demo-mode sessions. */
  canSign: boolean;
  issuer: string | null;
  audience: string | null;
  /** Where the key came from, for the start-up log. */
  source: 'AUTH_JWT_SECRET' | 'AUTH_JWT_PUBLIC_KEY' | 'derived from APP_KEY (demo)';
}

export interface TwilioConfig {
  accountSid: string;
  apiKey: string;
  apiSecret: string;
  conversationsServiceSid: string;
  /** Needed only to check X-Twilio-Signature on webhooks. */
  authToken: string | null;
}

/** Requests per minute, counted per route; 0 turns a limit off. */
export interface RateLimitConfig {
  /** POST /v1/session, per client address. */
  session: number;
  /** POST and DELETE /v1/cards, per identity. */
  cardRegistration: number;
  /** GET /v1/cards and /v1/cards/:id, per identity. */
  lookup: number;
  /** GET /v1/history/:conversationSid, per identity. */
  historyRead: number;
  /** POST /v1/history, per identity. */
  historyBackup: number;
  /** Local relay requests (every frame after `auth`), per identity. */
  relay: number;
  /** The transparency log's public routes (checkpoint, key, consistency proofs), per client address. */
  log: number;
}

export interface Config {
  production: boolean;
  demoMode: boolean;
  /**
   * Demo mode is on only because no auth setting was given and DEMO_MODE is unset (the quick
   * start), not because anyone asked for it: the plugin then refuses to start unless its
   * `demoMode` option says yes.
   */
  demoModeDefaulted: boolean;
  port: number;
  host: string;
  dataDir: string;
  /** PostgreSQL URL; null = the embedded SQLite store in dataDir. */
  databaseUrl: string | null;
  /** PostgreSQL schema of the tables (DATABASE_SCHEMA); null = the store's default, `twilio_e2ee`. */
  databaseSchema: string | null;
  appKey: AppKey;
  /** null outside demo mode when ORG_KEY is not set: organization history is disabled. */
  orgKey: OrgKey | null;
  /**
   * ORG_KEY_PREVIOUS: OrgKeys used before `orgKey`, newest first. History copies wrapped for them
   * stay readable, and backups posted for them are accepted, until rewrap-history moved them.
   */
  previousOrgKeys: OrgKey[];
  orgName: string;
  /** Where the keys came from (never the keys themselves), for the start-up log. */
  keySource: { appKey: 'APP_KEY' | 'key file'; orgKey: 'ORG_KEY' | 'key file' | 'none'; keyFile: string | null; keyFileCreated: boolean };
  auth: AuthConfig;
  /** The card transparency log: its origin, LogKey and checkpoint interval. */
  log: LogConfig;
  /** Lifetime of demo-mode session tokens, seconds. */
  sessionTtl: number;
  /** null = local mode (the relay instead of Twilio). */
  twilio: TwilioConfig | null;
  /** Lifetime of Twilio and relay tokens, seconds (at most 86400). */
  tokenTtl: number;
  /** Public base URL (no trailing slash), for relay URLs and webhook signatures. */
  publicUrl: string | null;
  /** Request body limit in bytes. */
  bodyLimit: number;
  rateLimit: RateLimitConfig;
  /** How long a new relay socket may take to authenticate before it is closed, ms. */
  relayAuthTimeoutMs: number;
  /**
   * Who may add a device to an identity that already has one: 'approval' (an existing device
   * signs a device proof, or approves the pending request) or 'open' (any valid app token for the
   * identity; contacts see a key change). Default 'open' in demo mode, else 'approval'.
   */
  newDevicePolicy: NewDevicePolicy;
  logLevel: LogLevel;
  /**
   * Fastify's trustProxy (standalone server only): false, the proxies' addresses/CIDRs
   * (comma-separated), or a hop count; true (trust any sender of X-Forwarded-For) in demo mode only.
   */
  trustProxy: boolean | string | number;
  /** Longest time to receive a whole request (line, headers and body), ms; then 408. */
  requestTimeoutMs: number;
  /** Serve the OpenAPI document and its UI at /docs (SERVE_DOCS; default: demo mode only). */
  serveDocs: boolean;
}

/**
 * Reads and validates the configuration. In demo mode (and outside production without APP_KEY)
 * it loads the keys from DATA_DIR/keys.json, creating that file once with fresh keys.
 * @throws E2EEError CONFIG_INVALID, with every problem in `details.problems`.
 */
export async function loadConfig(env: Env = process.env): Promise<Config> {
  await ready();
  const r = new EnvReader(env);
  const production = env.NODE_ENV === 'production';
  const explicitDemo = r.bool('DEMO_MODE');
  const secret = r.string('AUTH_JWT_SECRET');
  const publicKeyPem = r.string('AUTH_JWT_PUBLIC_KEY');
  // With nothing set the server is a local demo; any auth setting means a real deployment.
  const demoMode = explicitDemo ?? (!production && secret === undefined && publicKeyPem === undefined);

  if (production && demoMode) r.fail('DEMO_MODE must be off when NODE_ENV=production (demo sessions let anyone act as anyone)');
  if (production && !r.string('APP_KEY')) r.fail('APP_KEY is required when NODE_ENV=production (generate one with `npx twilio-e2ee keygen`)');
  if (production && !secret && !publicKeyPem) r.fail('AUTH_JWT_SECRET or AUTH_JWT_PUBLIC_KEY is required when NODE_ENV=production');
  if (!production && !demoMode && !secret && !publicKeyPem) {
    r.fail('DEMO_MODE is off but no AUTH_JWT_SECRET or AUTH_JWT_PUBLIC_KEY is set: nobody could authenticate');
  }

  const { dataDir, databaseUrl, databaseSchema } = loadStorage(r);
  const keys = loadKeys(r, { dataDir, demoMode });
  const auth = loadAuth(r, { demoMode, secret, publicKeyPem, appKey: keys?.appKey });
  const publicUrl = loadPublicUrl(r);
  const log = loadLogConfig(r, { dataDir, production, publicUrl, appKeySeed: keys?.appKey.seed });

  const orgName = r.string('ORG_NAME') ?? 'default';
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(orgName)) r.fail(`ORG_NAME must be 1..64 characters of [A-Za-z0-9_.-], got "${orgName}"`);

  const config = {
    production,
    demoMode,
    demoModeDefaulted: demoMode && explicitDemo === undefined,
    port: r.int('PORT', 3000, 0, 65_535),
    host: r.string('HOST') ?? '0.0.0.0',
    dataDir,
    databaseUrl,
    databaseSchema,
    orgName,
    sessionTtl: r.int('SESSION_TTL', 86_400, 60, 7 * 86_400),
    twilio: loadTwilio(r),
    tokenTtl: r.int('TWILIO_TOKEN_TTL', 3600, 60, MAX_TWILIO_TOKEN_TTL),
    publicUrl,
    bodyLimit: r.int('BODY_LIMIT', 65_536, 4096, 16 * 1024 * 1024),
    rateLimit: {
      session: r.int('RATE_LIMIT_SESSION', 60, 0, 1_000_000),
      cardRegistration: r.int('RATE_LIMIT_CARD_REGISTRATION', 60, 0, 1_000_000),
      lookup: r.int('RATE_LIMIT_LOOKUP', 1200, 0, 1_000_000),
      historyRead: r.int('RATE_LIMIT_HISTORY_READ', 300, 0, 1_000_000),
      historyBackup: r.int('RATE_LIMIT_HISTORY_BACKUP', 600, 0, 1_000_000),
      relay: r.int('RATE_LIMIT_RELAY', 1200, 0, 1_000_000),
      log: r.int('RATE_LIMIT_LOG', 1200, 0, 1_000_000),
    },
    relayAuthTimeoutMs: r.int('RELAY_AUTH_TIMEOUT', 10, 1, 60) * 1000,
    newDevicePolicy: r.oneOf('NEW_DEVICE_POLICY', NEW_DEVICE_POLICIES, demoMode ? 'open' : 'approval'),
    logLevel: r.oneOf('LOG_LEVEL', LOG_LEVELS, 'info'),
    trustProxy: loadTrustProxy(r, demoMode),
    requestTimeoutMs: r.int('REQUEST_TIMEOUT', 30, 1, 3600) * 1000,
    serveDocs: r.bool('SERVE_DOCS') ?? demoMode,
  };
  if (r.problems.length > 0 || !keys || !auth || !log) throw configInvalid(r.problems);
  return { ...config, ...keys, auth, log };
}

/** A start-up configuration error: one problem per variable at fault, in the message and in `details.problems`. */
function configInvalid(problems: string[]): E2EEError {
  return new E2EEError(ErrorCode.CONFIG_INVALID, `invalid configuration:\n  - ${problems.join('\n  - ')}`, { details: { problems } });
}
