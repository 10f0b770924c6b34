/**
 * The keys of server/config.ts: the AppKey and OrgKey (from the environment or the key file) and
 * the key that verifies app tokens (a shared secret, a public key, or one derived in demo mode).
 */
import { createPublicKey, randomUUID, type KeyObject } from 'node:crypto';
import { closeSync, linkSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import {
  appKeyFromB64u,
  equalBytes,
  fromB64uExact,
  generateAppKey,
  generateOrgKey,
  orgKeyFromB64u,
  orgKeyFromSeed,
  seedToB64u,
  toB64u,
  type AppKey,
  type OrgKey,
} from '../shared/index.js';
import type { AuthConfig, Config } from './config.js';
import type { EnvReader } from './config-env.js';
import { DEMO_SESSION_SECRET_LABEL, deriveAppSecret } from './secrets.js';

/** JWT algorithms accepted for app tokens: HS256 with a shared secret, or asymmetric public keys. */
export const JWT_ALGORITHMS = ['HS256', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;
export type JwtAlgorithm = (typeof JWT_ALGORITHMS)[number];

/** An HS256 key shorter than its 256-bit output would be the weakest link. */
export const MIN_JWT_SECRET_CHARS = 32;

export interface LoadedKeys {
  appKey: AppKey;
  orgKey: OrgKey | null;
  previousOrgKeys: OrgKey[];
  keySource: Config['keySource'];
}

export function loadKeys(r: EnvReader, opts: { dataDir: string; demoMode: boolean }): LoadedKeys | undefined {
  const keys = loadCurrentKeys(r, opts);
  if (!keys) return undefined;
  const previousOrgKeys = loadPreviousOrgKeys(r, keys.orgKey);
  return previousOrgKeys && { ...keys, previousOrgKeys };
}

/**
 * ORG_KEY_PREVIOUS: the OrgKeys in use before ORG_KEY, comma-separated b64u seeds, kept to read
 * history copies wrapped for them until rewrap-history has moved those to ORG_KEY.
 */
function loadPreviousOrgKeys(r: EnvReader, orgKey: OrgKey | null): OrgKey[] | undefined {
  const text = r.string('ORG_KEY_PREVIOUS');
  if (text === undefined) return [];
  if (!orgKey) {
    r.fail('ORG_KEY_PREVIOUS is set but there is no ORG_KEY: previous OrgKeys are read beside a current one');
    return undefined;
  }
  const entries = text.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '');
  const keys: OrgKey[] = [];
  for (const [i, entry] of entries.entries()) {
    // Problems name the entry by position, never by value: it is a secret.
    const name = `ORG_KEY_PREVIOUS entry ${i + 1}`;
    const key = r.parse('ORG_KEY_PREVIOUS', () => orgKeyFromSeed(fromB64uExact(entry, 32, name)));
    if (!key) continue;
    if (equalBytes(key.seed, orgKey.seed)) r.fail(`${name} is ORG_KEY itself: list only the keys used before it`);
    else if (keys.some((k) => equalBytes(k.seed, key.seed))) r.fail(`${name} repeats an earlier entry`);
    else keys.push(key);
  }
  return r.problems.length > 0 ? undefined : keys;
}

function loadCurrentKeys(r: EnvReader, opts: { dataDir: string; demoMode: boolean }): Omit<LoadedKeys, 'previousOrgKeys'> | undefined {
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

export function loadAuth(
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
