/**
 * Configuration: local demo mode with nothing set (keys generated once into DATA_DIR), the
 * production refusals, Twilio and auth settings, and clear messages naming each variable.
 */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig, loadOrCreateKeyFile } from '../../server/config.js';
import { E2EEError, ErrorCode, isE2EEError } from '../../shared/errors.js';
import { seedToB64u, toB64u } from '../../shared/index.js';
import { TEST_APP_KEY, TEST_LOG_KEY, TEST_ORG_KEY } from '../support/env.js';
import { TWILIO_CREDENTIALS_ENV as TWILIO } from '../support/twilio.js';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'twilio-e2ee-config-'));
  dirs.push(dir);
  return dir;
}
afterAll(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

/** The problems loadConfig reports for `env` (fails the test if it loads). */
async function problems(env: Record<string, string>): Promise<string[]> {
  try {
    await loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(E2EEError);
    if (!isE2EEError(err, ErrorCode.CONFIG_INVALID)) throw err;
    return err.details!.problems;
  }
  throw new Error('loadConfig accepted the configuration');
}

const SECRET = 's'.repeat(40);
const PRODUCTION = { NODE_ENV: 'production', APP_KEY: TEST_APP_KEY, LOG_KEY: TEST_LOG_KEY, AUTH_JWT_SECRET: SECRET };

describe('local demo mode (nothing set)', () => {
  it('generates the keys once into DATA_DIR/keys.json (mode 0600) and loads the same keys next time', async () => {
    const dataDir = join(tempDir(), 'data');
    const first = await loadConfig({ DATA_DIR: dataDir });
    expect(first.demoMode).toBe(true);
    expect(first.production).toBe(false);
    expect(first.twilio).toBeNull();
    expect(first.keySource).toEqual({ appKey: 'key file', orgKey: 'key file', keyFile: join(dataDir, 'keys.json'), keyFileCreated: true });
    expect(statSync(join(dataDir, 'keys.json')).mode & 0o777).toBe(0o600);
    expect(first.auth).toMatchObject({ algorithm: 'HS256', canSign: true, source: 'derived from APP_KEY (demo)' });

    const second = await loadConfig({ DATA_DIR: dataDir });
    expect(second.keySource.keyFileCreated).toBe(false);
    expect(second.appKey.publicKey).toEqual(first.appKey.publicKey);
    expect(second.orgKey!.seed).toEqual(first.orgKey!.seed);
    expect(second.auth.key).toBe(first.auth.key); // instances sharing the keys accept each other's sessions
  });

  it('creates the key file once; every later load reads the same keys', async () => {
    const dataDir = tempDir();
    const loaded = Array.from({ length: 8 }, () => loadOrCreateKeyFile(dataDir));
    expect(loaded.filter((k) => k.created)).toHaveLength(1);
    expect(new Set(loaded.map((k) => k.appKey.appKeyId)).size).toBe(1);
  });

  it('has the documented defaults', async () => {
    const config = await loadConfig({ APP_KEY: TEST_APP_KEY, ORG_KEY: TEST_ORG_KEY });
    expect(config).toMatchObject({
      port: 3000,
      host: '0.0.0.0',
      databaseUrl: null,
      orgName: 'default',
      tokenTtl: 3600,
      bodyLimit: 65_536,
      publicUrl: null,
      logLevel: 'info',
      rateLimit: { session: 60, cardRegistration: 60, lookup: 1200, historyRead: 300, historyBackup: 600 },
      requestTimeoutMs: 30_000,
      trustProxy: false,
      serveDocs: true, // demo mode
    });
    expect(config.dataDir).toBe(join(process.cwd(), '.data'));
    expect(config.keySource.keyFile).toBeNull(); // explicit keys: nothing written
  });

  it('says where a broken key file is', async () => {
    const dataDir = tempDir();
    writeFileSync(join(dataDir, 'keys.json'), 'not json');
    expect((await problems({ DATA_DIR: dataDir })).join('\n')).toMatch(/DATA_DIR is invalid: .*keys\.json is not valid JSON/);
  });

  it('uses AUTH_JWT_SECRET for demo sessions when set with DEMO_MODE=true', async () => {
    const config = await loadConfig({ APP_KEY: TEST_APP_KEY, ORG_KEY: TEST_ORG_KEY, DEMO_MODE: 'true', AUTH_JWT_SECRET: SECRET });
    expect(config.demoMode).toBe(true);
    expect(config.auth).toMatchObject({ key: SECRET, source: 'AUTH_JWT_SECRET' });
  });
});

describe('production mode (NODE_ENV=production)', () => {
  it('refuses to start without explicit keys, without auth, or with demo mode on, naming each variable', async () => {
    const found = await problems({ NODE_ENV: 'production', DEMO_MODE: 'true' });
    expect(found).toEqual([
      expect.stringContaining('DEMO_MODE must be off'),
      expect.stringContaining('APP_KEY is required'),
      expect.stringContaining('AUTH_JWT_SECRET or AUTH_JWT_PUBLIC_KEY is required'),
      expect.stringContaining('LOG_KEY is required'),
    ]);
  });

  it('never writes a key file', async () => {
    const dataDir = tempDir();
    await problems({ NODE_ENV: 'production', DATA_DIR: dataDir, AUTH_JWT_SECRET: SECRET });
    expect(() => statSync(join(dataDir, 'keys.json'))).toThrow();
    expect(() => statSync(join(dataDir, 'log-key.json'))).toThrow();
  });

  it('starts with explicit keys and auth; history is disabled without ORG_KEY', async () => {
    const config = await loadConfig({ ...PRODUCTION, DATA_DIR: tempDir() });
    expect(config).toMatchObject({ production: true, demoMode: false, orgKey: null });
    expect(config.keySource).toMatchObject({ appKey: 'APP_KEY', orgKey: 'none', keyFile: null });
    const withOrg = await loadConfig({ ...PRODUCTION, ORG_KEY: TEST_ORG_KEY });
    expect(withOrg.orgKey).not.toBeNull();
  });
});

describe('validation', () => {
  it('reports every problem at once, each naming its variable', async () => {
    const found = await problems({
      APP_KEY: 'short',
      PORT: 'eighty',
      TWILIO_TOKEN_TTL: '86401',
      BODY_LIMIT: '10',
      LOG_LEVEL: 'loud',
      PUBLIC_URL: 'ftp://example.com',
      DATABASE_URL: 'mysql://db',
      ORG_NAME: 'bad name',
      DEMO_MODE: 'maybe',
    });
    for (const name of ['APP_KEY', 'PORT', 'TWILIO_TOKEN_TTL', 'BODY_LIMIT', 'LOG_LEVEL', 'PUBLIC_URL', 'DATABASE_URL', 'ORG_NAME', 'DEMO_MODE']) {
      expect(found.some((p) => p.startsWith(name)), `${name} in ${found.join(' | ')}`).toBe(true);
    }
    expect(found.find((p) => p.startsWith('TWILIO_TOKEN_TTL'))).toContain('from 60 to 86400');
  });

  it('never echoes a key or secret in a message', async () => {
    const badKey = `${'A'.repeat(42)}!`;
    const found = await problems({ APP_KEY: badKey, AUTH_JWT_SECRET: 'tooshort-secret' });
    expect(found.join('\n')).not.toContain(badKey);
    expect(found.join('\n')).not.toContain('tooshort-secret');
    expect(found.join('\n')).toContain('AUTH_JWT_SECRET must be at least 32 characters');
  });

  it('treats empty values as unset (an untouched .env template)', async () => {
    const config = await loadConfig({ APP_KEY: TEST_APP_KEY, ORG_KEY: TEST_ORG_KEY, PORT: '', TWILIO_ACCOUNT_SID: '', AUTH_JWT_SECRET: ' ' });
    expect(config.port).toBe(3000);
    expect(config.twilio).toBeNull();
    expect(config.demoMode).toBe(true);
  });

  it('switches to Twilio mode only with the full credential set', async () => {
    const config = await loadConfig({ APP_KEY: TEST_APP_KEY, ORG_KEY: TEST_ORG_KEY, ...TWILIO, TWILIO_TOKEN_TTL: '86400' });
    expect(config.twilio).toEqual({
      accountSid: TWILIO.TWILIO_ACCOUNT_SID,
      apiKey: TWILIO.TWILIO_API_KEY,
      apiSecret: TWILIO.TWILIO_API_SECRET,
      conversationsServiceSid: TWILIO.TWILIO_CONVERSATIONS_SERVICE_SID,
      authToken: null,
    });
    expect(config.tokenTtl).toBe(86_400);

    const { TWILIO_API_SECRET: _, ...partial } = TWILIO;
    expect(await problems({ APP_KEY: TEST_APP_KEY, ...partial })).toEqual([expect.stringMatching(/missing TWILIO_API_SECRET/)]);
    expect(await problems({ APP_KEY: TEST_APP_KEY, TWILIO_AUTH_TOKEN: 'token' })).toEqual([expect.stringMatching(/^TWILIO_AUTH_TOKEN is set/)]);
    expect(await problems({ APP_KEY: TEST_APP_KEY, ...TWILIO, TWILIO_ACCOUNT_SID: 'AC123' })).toEqual([
      expect.stringMatching(/^TWILIO_ACCOUNT_SID does not look like/),
    ]);
  });

  it('infers the algorithm of AUTH_JWT_PUBLIC_KEY, accepts \\n-escaped PEM, and checks AUTH_JWT_ALGORITHM against it', async () => {
    const pem = (type: 'rsa' | 'ec' | 'ed25519', options = {}) =>
      generateKeyPairSync(type as 'rsa', { modulusLength: 2048, ...options }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const base = { APP_KEY: TEST_APP_KEY };
    const rsa = pem('rsa');
    expect((await loadConfig({ ...base, AUTH_JWT_PUBLIC_KEY: rsa })).auth).toMatchObject({ algorithm: 'RS256', canSign: false });
    expect((await loadConfig({ ...base, AUTH_JWT_PUBLIC_KEY: rsa.replace(/\n/g, '\\n'), AUTH_JWT_ALGORITHM: 'PS512' })).auth.algorithm).toBe('PS512');
    expect((await loadConfig({ ...base, AUTH_JWT_PUBLIC_KEY: pem('ec', { namedCurve: 'P-384' }) })).auth.algorithm).toBe('ES384');
    expect((await loadConfig({ ...base, AUTH_JWT_PUBLIC_KEY: pem('ed25519') })).auth.algorithm).toBe('EdDSA');

    expect(await problems({ ...base, AUTH_JWT_PUBLIC_KEY: rsa, AUTH_JWT_ALGORITHM: 'ES256' })).toEqual([expect.stringMatching(/^AUTH_JWT_ALGORITHM ES256 does not fit/)]);
    expect(await problems({ ...base, AUTH_JWT_PUBLIC_KEY: 'not a pem' })).toEqual([expect.stringMatching(/^AUTH_JWT_PUBLIC_KEY is invalid/)]);
    expect(await problems({ ...base, AUTH_JWT_PUBLIC_KEY: rsa, DEMO_MODE: 'true' })).toEqual([expect.stringMatching(/^DEMO_MODE issues its own/)]);
    expect(await problems({ ...base, AUTH_JWT_PUBLIC_KEY: rsa, AUTH_JWT_SECRET: SECRET })).toEqual([expect.stringMatching(/only one of/)]);
    expect(await problems({ ...base, DEMO_MODE: 'false' })).toEqual([expect.stringMatching(/nobody could authenticate/)]);
  });
});

describe('TRUST_PROXY', () => {
  const demo = { APP_KEY: TEST_APP_KEY, ORG_KEY: TEST_ORG_KEY };

  it('refuses true outside demo mode, naming the variable and what to give instead', async () => {
    const found = await problems({ ...PRODUCTION, TRUST_PROXY: 'true' });
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(/^TRUST_PROXY=true trusts X-Forwarded-For from any client .*addresses\/CIDRs or give a hop count$/);
    expect(await problems({ ...demo, AUTH_JWT_SECRET: SECRET, TRUST_PROXY: 'TRUE' })).toHaveLength(1);
  });

  it('accepts true in demo mode (the server warns at start-up)', async () => {
    expect((await loadConfig({ ...demo, TRUST_PROXY: 'true' })).trustProxy).toBe(true);
  });

  it.each([
    ['one address', '10.0.0.1', '10.0.0.1'],
    ['addresses and CIDRs, IPv4 and IPv6, with spaces', '10.0.0.1, 192.168.0.0/16,fd00::/8 , ::1', '10.0.0.1,192.168.0.0/16,fd00::/8,::1'],
    ['proxy-addr range names', 'loopback,uniquelocal', 'loopback,uniquelocal'],
  ])('accepts %s in production', async (_, text, expected) => {
    expect((await loadConfig({ ...PRODUCTION, TRUST_PROXY: text })).trustProxy).toBe(expected);
  });

  it('accepts a hop count', async () => {
    expect((await loadConfig({ ...PRODUCTION, TRUST_PROXY: '2' })).trustProxy).toBe(2);
  });

  it.each([
    ['a host name', 'proxy.example.com', /not valid: "proxy\.example\.com"/],
    ['a prefix too long', '10.0.0.0/33', /not valid: "10\.0\.0\.0\/33"/],
    ['an empty entry', '10.0.0.1,,10.0.0.2', /not valid: ""/],
    ['a hop count of 0', '0', /hop count must be from 1 to 10/],
    ['a hop count over 10', '11', /hop count must be from 1 to 10/],
  ])('refuses %s', async (_, text, message) => {
    const found = await problems({ ...PRODUCTION, TRUST_PROXY: text });
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(message);
  });

  it('is off when unset or false', async () => {
    expect((await loadConfig(PRODUCTION)).trustProxy).toBe(false);
    expect((await loadConfig({ ...PRODUCTION, TRUST_PROXY: 'false' })).trustProxy).toBe(false);
  });
});

describe('SERVE_DOCS and REQUEST_TIMEOUT', () => {
  it('serves /docs by default in demo mode only; SERVE_DOCS decides otherwise', async () => {
    expect((await loadConfig(PRODUCTION)).serveDocs).toBe(false);
    expect((await loadConfig({ ...PRODUCTION, SERVE_DOCS: 'true' })).serveDocs).toBe(true);
    expect((await loadConfig({ APP_KEY: TEST_APP_KEY, ORG_KEY: TEST_ORG_KEY, SERVE_DOCS: 'false' })).serveDocs).toBe(false);
  });

  it('reads REQUEST_TIMEOUT in seconds and refuses values out of range', async () => {
    expect((await loadConfig({ ...PRODUCTION, REQUEST_TIMEOUT: '5' })).requestTimeoutMs).toBe(5_000);
    expect(await problems({ ...PRODUCTION, REQUEST_TIMEOUT: '0' })).toEqual(['REQUEST_TIMEOUT must be an integer from 1 to 3600, got "0"']);
  });
});

describe('npm run keygen', () => {
  it('prints APP_KEY, ORG_KEY and LOG_KEY lines that loadConfig accepts, fresh each time', async () => {
    const run = () => execFileSync('npx', ['tsx', 'server/keygen.ts'], { encoding: 'utf8', env: { ...process.env, LOG_ORIGIN: 'chat.example.com/log' } });
    const parse = (out: string) => Object.fromEntries(out.split('\n').filter((l) => /^[A-Z_]+=/.test(l)).map((l) => l.split('=', 2) as [string, string]));
    const printed = run();
    const first = parse(printed);
    const second = parse(run());
    expect(Object.keys(first)).toEqual(['APP_KEY', 'ORG_KEY', 'LOG_KEY']);
    expect(first.APP_KEY).not.toBe(second.APP_KEY);
    const config = await loadConfig({ ...PRODUCTION, ...first, LOG_ORIGIN: 'chat.example.com/log' });
    expect(seedToB64u(config.appKey.seed)).toBe(first.APP_KEY);
    expect(seedToB64u(config.orgKey!.seed)).toBe(first.ORG_KEY);
    // The pins clients configure: the AppKey and the OrgCard's box key.
    expect(printed).toContain(`appPublicKeys: ['${toB64u(config.appKey.publicKey)}']`);
    expect(printed).toContain(`orgPublicKeys: ['${toB64u(config.orgKey!.keys.boxPublicKey)}']`);
    // The LogKey's verifier key, named for the origin, as clients and witnesses pin it.
    expect(config.log.verifierKey).toMatch(/^chat\.example\.com\/log\+[0-9a-f]{8}\+/);
    expect(printed).toContain(config.log.verifierKey);
  });
});

describe('the log settings', () => {
  it('defaults the origin from PUBLIC_URL, else a fixed name; the key file keeps one LogKey; LOG_KEY is its own key', async () => {
    const dataDir = tempDir();
    const local = await loadConfig({ DATA_DIR: dataDir });
    expect(local.log).toMatchObject({ origin: 'twilio-e2ee/log', keySource: 'key file', keyFile: join(dataDir, 'log-key.json'), checkpointIntervalMs: 2000 });
    expect((await loadConfig({ DATA_DIR: dataDir })).log.verifierKey).toBe(local.log.verifierKey);
    const hosted = await loadConfig({ ...PRODUCTION, PUBLIC_URL: 'https://chat.example.com/e2ee/', LOG_CHECKPOINT_INTERVAL_MS: '5000' });
    expect(hosted.log).toMatchObject({ origin: 'chat.example.com/e2ee/log', keySource: 'LOG_KEY', keyFile: null, checkpointIntervalMs: 5000 });
    expect(toB64u(hosted.log.key.publicKey)).not.toBe(toB64u(hosted.appKey.publicKey));
  });

  it('refuses a bad LOG_KEY, LOG_ORIGIN or interval, naming the variable', async () => {
    const found = await problems({ ...PRODUCTION, LOG_KEY: 'short', LOG_ORIGIN: 'has space', LOG_CHECKPOINT_INTERVAL_MS: '10' });
    expect(found).toEqual([
      expect.stringContaining('LOG_CHECKPOINT_INTERVAL_MS must be an integer from 100'),
      expect.stringContaining('LOG_ORIGIN must be a name without spaces'),
    ]);
    expect(await problems({ ...PRODUCTION, LOG_KEY: 'short' })).toEqual([expect.stringContaining('LOG_KEY is invalid')]);
    expect(await problems({ ...PRODUCTION, LOG_KEY: TEST_APP_KEY })).toEqual(['LOG_KEY must be a key of its own, not APP_KEY (generate one with `npx twilio-e2ee keygen`)']);
  });
});

describe('the key file', () => {
  it('holds b64u seeds', () => {
    const dataDir = tempDir();
    const { appKey } = loadOrCreateKeyFile(dataDir);
    const file = JSON.parse(readFileSync(join(dataDir, 'keys.json'), 'utf8')) as { appKey: string };
    expect(file.appKey).toBe(seedToB64u(appKey.seed));
  });
});
