/**
 * Server configuration (docs/API.md "Configuration"): read from the environment, validated once at
 * start-up. Every problem names its variable, and all problems are reported together, so an
 * operator fixes a broken .env in one pass.
 *
 * Modes:
 * - local demo (nothing set): keys generated once into DATA_DIR/keys.json, POST /v1/session
 *   issues tokens for any identity. Never for production.
 * - production (NODE_ENV=production): explicit APP_KEY and an auth secret or public key are
 *   required, and DEMO_MODE must be off.
 */
import { createPublicKey, randomUUID, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { closeSync, linkSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  appKeyFromB64u,
  generateAppKey,
  generateOrgKey,
  orgKeyFromB64u,
  ready,
  seedToB64u,
  toB64u,
  type AppKey,
  type OrgKey,
} from '../shared/index.js';
import { DEMO_SESSION_SECRET_LABEL, deriveAppSecret } from './secrets.js';

/** JWT algorithms accepted for app tokens: HS256 with a shared secret, or asymmetric public keys. */
export const JWT_ALGORITHMS = ['HS256', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;
export type JwtAlgorithm = (typeof JWT_ALGORITHMS)[number];

export const NEW_DEVICE_POLICIES = ['approval', 'open'] as const;
export type NewDevicePolicy = (typeof NEW_DEVICE_POLICIES)[number];

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Twilio access tokens live at most 24 hours (Twilio's own limit). */
export const MAX_TWILIO_TOKEN_TTL = 86_400;
/** An HS256 key shorter than its 256-bit output would be the weakest link. */
export const MIN_JWT_SECRET_CHARS = 32;

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
}

export interface Config {
  production: boolean;
  demoMode: boolean;
  port: number;
  host: string;
  dataDir: string;
  /** PostgreSQL URL; null = the embedded SQLite store in dataDir. */
  databaseUrl: string | null;
  appKey: AppKey;
  /** null outside demo mode when ORG_KEY is not set: organization history is disabled. */
  orgKey: OrgKey | null;
  orgName: string;
  /** Where the keys came from (never the keys themselves), for the start-up log. */
  keySource: { appKey: 'APP_KEY' | 'key file'; orgKey: 'ORG_KEY' | 'key file' | 'none'; keyFile: string | null; keyFileCreated: boolean };
  auth: AuthConfig;
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

/** A start-up configuration error; `problems` has one line per variable at fault. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

/** Collects problems while reading variables, so all of them are reported at once. */
class EnvReader {
  readonly problems: string[] = [];
  constructor(private readonly env: Env) {}

  /** The trimmed value, or undefined when unset or empty (as in an untouched .env template). */
  string(name: string): string | undefined {
    const value = this.env[name]?.trim();
    return value ? value : undefined;
  }

  int(name: string, fallback: number, min: number, max: number): number {
    const text = this.string(name);
    if (text === undefined) return fallback;
    const value = Number(text);
    if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value < min || value > max) {
      this.problems.push(`${name} must be an integer from ${min} to ${max}, got "${text}"`);
      return fallback;
    }
    return value;
  }

  bool(name: string): boolean | undefined {
    const text = this.string(name)?.toLowerCase();
    if (text === undefined) return undefined;
    if (['1', 'true', 'yes', 'on'].includes(text)) return true;
    if (['0', 'false', 'no', 'off'].includes(text)) return false;
    this.problems.push(`${name} must be true or false, got "${text}"`);
    return undefined;
  }

  oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
    const text = this.string(name);
    if (text === undefined) return fallback;
    if ((allowed as readonly string[]).includes(text)) return text as T;
    this.problems.push(`${name} must be one of ${allowed.join(', ')}, got "${text}"`);
    return fallback;
  }

  /** Runs a parser, turning its exception into a problem naming the variable (never the value: it may be a secret). */
  parse<T>(name: string, parser: () => T): T | undefined {
    try {
      return parser();
    } catch (err) {
      this.problems.push(`${name} is invalid: ${(err as Error).message}`);
      return undefined;
    }
  }

  fail(problem: string): void {
    this.problems.push(problem);
  }
}

/**
 * Reads and validates the configuration. In demo mode (and outside production without APP_KEY)
 * it loads the keys from DATA_DIR/keys.json, creating that file once with fresh keys.
 * @throws ConfigError listing every problem.
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
  if (production && !r.string('APP_KEY')) r.fail('APP_KEY is required when NODE_ENV=production (generate one with `npm run keygen`)');
  if (production && !secret && !publicKeyPem) r.fail('AUTH_JWT_SECRET or AUTH_JWT_PUBLIC_KEY is required when NODE_ENV=production');
  if (!production && !demoMode && !secret && !publicKeyPem) {
    r.fail('DEMO_MODE is off but no AUTH_JWT_SECRET or AUTH_JWT_PUBLIC_KEY is set: nobody could authenticate');
  }

  const dataDir = resolve(r.string('DATA_DIR') ?? './.data');
  const keys = loadKeys(r, { dataDir, demoMode });
  const auth = loadAuth(r, { demoMode, secret, publicKeyPem, appKey: keys?.appKey });

  const databaseUrl = r.string('DATABASE_URL') ?? null;
  if (databaseUrl !== null && !/^postgres(ql)?:\/\//.test(databaseUrl)) r.fail('DATABASE_URL must be a postgres:// or postgresql:// URL');

  const orgName = r.string('ORG_NAME') ?? 'default';
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(orgName)) r.fail(`ORG_NAME must be 1..64 characters of [A-Za-z0-9_.-], got "${orgName}"`);

  const config = {
    production,
    demoMode,
    port: r.int('PORT', 3000, 0, 65_535),
    host: r.string('HOST') ?? '0.0.0.0',
    dataDir,
    databaseUrl,
    orgName,
    sessionTtl: r.int('SESSION_TTL', 86_400, 60, 7 * 86_400),
    twilio: loadTwilio(r),
    tokenTtl: r.int('TWILIO_TOKEN_TTL', 3600, 60, MAX_TWILIO_TOKEN_TTL),
    publicUrl: loadPublicUrl(r),
    bodyLimit: r.int('BODY_LIMIT', 65_536, 4096, 16 * 1024 * 1024),
    rateLimit: {
      session: r.int('RATE_LIMIT_SESSION', 60, 0, 1_000_000),
      cardRegistration: r.int('RATE_LIMIT_CARD_REGISTRATION', 60, 0, 1_000_000),
      lookup: r.int('RATE_LIMIT_LOOKUP', 1200, 0, 1_000_000),
      historyRead: r.int('RATE_LIMIT_HISTORY_READ', 300, 0, 1_000_000),
      historyBackup: r.int('RATE_LIMIT_HISTORY_BACKUP', 600, 0, 1_000_000),
      relay: r.int('RATE_LIMIT_RELAY', 1200, 0, 1_000_000),
    },
    relayAuthTimeoutMs: r.int('RELAY_AUTH_TIMEOUT', 10, 1, 60) * 1000,
    newDevicePolicy: r.oneOf('NEW_DEVICE_POLICY', NEW_DEVICE_POLICIES, demoMode ? 'open' : 'approval'),
    logLevel: r.oneOf('LOG_LEVEL', LOG_LEVELS, 'info'),
    trustProxy: loadTrustProxy(r, demoMode),
    requestTimeoutMs: r.int('REQUEST_TIMEOUT', 30, 1, 3600) * 1000,
    serveDocs: r.bool('SERVE_DOCS') ?? demoMode,
  };
  if (r.problems.length > 0 || !keys || !auth) throw new ConfigError(r.problems);
  return { ...config, ...keys, auth };
}

interface LoadedKeys {
  appKey: AppKey;
  orgKey: OrgKey | null;
  keySource: Config['keySource'];
}

function loadKeys(r: EnvReader, opts: { dataDir: string; demoMode: boolean }): LoadedKeys | undefined {
  const appText = r.string('APP_KEY');
  const orgText = r.string('ORG_KEY');
  const appKey = appText === undefined ? undefined : r.parse('APP_KEY', () => appKeyFromB64u(appText));
  const orgKey = orgText === undefined ? undefined : r.parse('ORG_KEY', () => orgKeyFromB64u(orgText));
  if ((appText !== undefined && !appKey) || (orgText !== undefined && !orgKey)) return undefined;
  if (r.problems.length > 0) return undefined; // e.g. production without APP_KEY: do not write a key file

  // The key file is a convenience for local runs: the app key when APP_KEY is unset, and the
  // org key when demo mode needs one. Outside demo mode a missing ORG_KEY disables history.
  const useFileForApp = appKey === undefined;
  const useFileForOrg = orgKey === undefined && (opts.demoMode || useFileForApp);
  if (!useFileForApp && !useFileForOrg) {
    return { appKey: appKey!, orgKey: orgKey ?? null, keySource: { appKey: 'APP_KEY', orgKey: orgKey ? 'ORG_KEY' : 'none', keyFile: null, keyFileCreated: false } };
  }
  const file = r.parse('DATA_DIR', () => loadOrCreateKeyFile(opts.dataDir));
  if (!file) return undefined;
  return {
    appKey: appKey ?? file.appKey,
    orgKey: orgKey ?? (useFileForOrg ? file.orgKey : null),
    keySource: {
      appKey: useFileForApp ? 'key file' : 'APP_KEY',
      orgKey: orgKey ? 'ORG_KEY' : useFileForOrg ? 'key file' : 'none',
      keyFile: file.path,
      keyFileCreated: file.created,
    },
  };
}

/**
 * DATA_DIR/keys.json: `{"appKey","orgKey"}` as b64u seeds, mode 0600. Written to a temporary
 * file and hard-linked into place, so concurrent first starts agree on one key pair (the link
 * fails for all but the first) and nobody reads a half-written file.
 */
export function loadOrCreateKeyFile(dataDir: string): { appKey: AppKey; orgKey: OrgKey; path: string; created: boolean } {
  const path = join(dataDir, 'keys.json');
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  let created = false;
  const tmp = `${path}.${randomUUID()}.tmp`;
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    const fresh = { appKey: seedToB64u(generateAppKey().seed), orgKey: seedToB64u(generateOrgKey().seed) };
    writeSync(fd, `${JSON.stringify(fresh, null, 2)}\n`);
    closeSync(fd);
    try {
      linkSync(tmp, path);
      created = true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  } finally {
    unlinkSync(tmp);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    throw new Error(`${path} is not valid JSON; delete it to generate new keys`);
  }
  const { appKey, orgKey } = (parsed ?? {}) as { appKey?: unknown; orgKey?: unknown };
  if (typeof appKey !== 'string' || typeof orgKey !== 'string') throw new Error(`${path} lacks "appKey" or "orgKey"`);
  return { appKey: appKeyFromB64u(appKey), orgKey: orgKeyFromB64u(orgKey), path, created };
}

function loadAuth(
  r: EnvReader,
  opts: { demoMode: boolean; secret: string | undefined; publicKeyPem: string | undefined; appKey: AppKey | undefined },
): AuthConfig | undefined {
  const issuer = r.string('AUTH_JWT_ISSUER') ?? null;
  const audience = r.string('AUTH_JWT_AUDIENCE') ?? null;
  const algorithmText = r.string('AUTH_JWT_ALGORITHM');
  if (algorithmText !== undefined && !(JWT_ALGORITHMS as readonly string[]).includes(algorithmText)) {
    r.fail(`AUTH_JWT_ALGORITHM must be one of ${JWT_ALGORITHMS.join(', ')}, got "${algorithmText}"`);
    return undefined;
  }
  const algorithm = algorithmText as JwtAlgorithm | undefined;

  if (opts.secret !== undefined && opts.publicKeyPem !== undefined) {
    r.fail('set only one of AUTH_JWT_SECRET and AUTH_JWT_PUBLIC_KEY');
    return undefined;
  }
  if (opts.secret !== undefined) {
    if (opts.secret.length < MIN_JWT_SECRET_CHARS) r.fail(`AUTH_JWT_SECRET must be at least ${MIN_JWT_SECRET_CHARS} characters`);
    if (algorithm !== undefined && algorithm !== 'HS256') r.fail(`AUTH_JWT_ALGORITHM must be HS256 with AUTH_JWT_SECRET, got "${algorithm}"`);
    return { algorithm: 'HS256', key: opts.secret, canSign: true, issuer, audience, source: 'AUTH_JWT_SECRET' };
  }
  if (opts.publicKeyPem !== undefined) {
    if (opts.demoMode) {
      r.fail('DEMO_MODE issues its own session tokens and needs AUTH_JWT_SECRET (or nothing), not AUTH_JWT_PUBLIC_KEY');
      return undefined;
    }
    // .env files often carry a PEM on one line with literal \n.
    const pem = opts.publicKeyPem.replace(/\\n/g, '\n');
    const key = r.parse('AUTH_JWT_PUBLIC_KEY', () => createPublicKey(pem));
    if (!key) return undefined;
    const inferred = algorithmFor(key);
    if (!inferred) {
      r.fail(`AUTH_JWT_PUBLIC_KEY has an unsupported key type "${key.asymmetricKeyType}" (use RSA, EC P-256/384/521 or Ed25519)`);
      return undefined;
    }
    if (algorithm !== undefined && !fitsKey(algorithm, inferred)) {
      r.fail(`AUTH_JWT_ALGORITHM ${algorithm} does not fit the ${key.asymmetricKeyType} key in AUTH_JWT_PUBLIC_KEY`);
      return undefined;
    }
    return { algorithm: algorithm ?? inferred, key: pem, canSign: false, issuer, audience, source: 'AUTH_JWT_PUBLIC_KEY' };
  }
  if (opts.demoMode && opts.appKey) {
    // Every instance with the same APP_KEY derives the same secret, so any of them verifies any session.
    const derived = toB64u(deriveAppSecret(opts.appKey, DEMO_SESSION_SECRET_LABEL));
    return { algorithm: 'HS256', key: derived, canSign: true, issuer, audience, source: 'derived from APP_KEY (demo)' };
  }
  return undefined; // the missing-auth problem is already recorded
}

function algorithmFor(key: KeyObject): JwtAlgorithm | undefined {
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return 'RS256';
    case 'rsa-pss':
      return 'PS256';
    case 'ed25519':
      return 'EdDSA';
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      if (curve === 'prime256v1') return 'ES256';
      if (curve === 'secp384r1') return 'ES384';
      if (curve === 'secp521r1') return 'ES512';
      return undefined;
    }
    default:
      return undefined;
  }
}

function fitsKey(algorithm: JwtAlgorithm, inferred: JwtAlgorithm): boolean {
  if (inferred === 'RS256') return algorithm.startsWith('RS') || algorithm.startsWith('PS');
  if (inferred === 'PS256') return algorithm.startsWith('PS');
  return algorithm === inferred; // EC curves and Ed25519 each fix their algorithm
}

const TWILIO_VARS = {
  TWILIO_ACCOUNT_SID: /^AC[0-9a-fA-F]{32}$/,
  TWILIO_API_KEY: /^SK[0-9a-fA-F]{32}$/,
  TWILIO_API_SECRET: /^.{16,}$/,
  TWILIO_CONVERSATIONS_SERVICE_SID: /^IS[0-9a-fA-F]{32}$/,
} as const;

function loadTwilio(r: EnvReader): TwilioConfig | null {
  const names = Object.keys(TWILIO_VARS) as (keyof typeof TWILIO_VARS)[];
  const values = Object.fromEntries(names.map((name) => [name, r.string(name)])) as Record<keyof typeof TWILIO_VARS, string | undefined>;
  const authToken = r.string('TWILIO_AUTH_TOKEN') ?? null;
  const missing = names.filter((name) => values[name] === undefined);
  if (missing.length === names.length) {
    if (authToken !== null) r.fail(`TWILIO_AUTH_TOKEN is set but ${missing.join(', ')} are not: set all of them for Twilio mode, or none for local mode`);
    return null;
  }
  if (missing.length > 0) {
    r.fail(`Twilio mode needs ${names.join(', ')}; missing ${missing.join(', ')} (unset them all for local mode)`);
    return null;
  }
  for (const name of names) {
    if (!TWILIO_VARS[name].test(values[name]!)) r.fail(`${name} does not look like a Twilio ${name === 'TWILIO_API_SECRET' ? 'API secret' : 'SID'}`);
  }
  return {
    accountSid: values.TWILIO_ACCOUNT_SID!,
    apiKey: values.TWILIO_API_KEY!,
    apiSecret: values.TWILIO_API_SECRET!,
    conversationsServiceSid: values.TWILIO_CONVERSATIONS_SERVICE_SID!,
    authToken,
  };
}

function loadPublicUrl(r: EnvReader): string | null {
  const text = r.string('PUBLIC_URL');
  if (text === undefined) return null;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    r.fail(`PUBLIC_URL must be an absolute http(s) URL, got "${text}"`);
    return null;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') r.fail(`PUBLIC_URL must be an http(s) URL, got "${text}"`);
  if (url.search || url.hash) r.fail('PUBLIC_URL must not have a query or fragment');
  return url.href.replace(/\/+$/, '');
}

/** proxy-addr's names for address ranges, accepted in TRUST_PROXY like addresses. */
const TRUST_PROXY_RANGES = ['loopback', 'linklocal', 'uniquelocal'];

/**
 * TRUST_PROXY: which X-Forwarded-For entries name the client. `true` trusts whoever sends the
 * header, so any client could pick the address its rate limits count against: demo mode only.
 */
function loadTrustProxy(r: EnvReader, demoMode: boolean): boolean | string | number {
  const text = r.string('TRUST_PROXY');
  if (text === undefined || text.toLowerCase() === 'false') return false;
  if (text.toLowerCase() === 'true') {
    if (!demoMode) r.fail('TRUST_PROXY=true trusts X-Forwarded-For from any client (who then picks its own rate-limit address): list the proxies\' addresses/CIDRs or give a hop count');
    return true;
  }
  if (/^\d+$/.test(text)) {
    const hops = Number(text);
    if (hops >= 1 && hops <= 10) return hops;
    r.fail(`TRUST_PROXY as a hop count must be from 1 to 10, got "${text}"`);
    return false;
  }
  const entries = text.split(',').map((entry) => entry.trim());
  const invalid = entries.filter((entry) => !TRUST_PROXY_RANGES.includes(entry) && !isAddressOrCidr(entry));
  if (invalid.length > 0) {
    r.fail(`TRUST_PROXY must be false, a hop count, or comma-separated proxy addresses/CIDRs; not valid: ${invalid.map((e) => `"${e}"`).join(', ')}`);
    return false;
  }
  return entries.join(',');
}

function isAddressOrCidr(text: string): boolean {
  const [address = '', prefix, ...rest] = text.split('/');
  const version = isIP(address);
  if (version === 0 || rest.length > 0) return false;
  if (prefix === undefined) return true;
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (version === 4 ? 32 : 128);
}
