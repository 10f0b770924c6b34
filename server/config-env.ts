/**
 * Reading the environment for server/config.ts: the reader that collects every problem, and the
 * settings that are not keys (storage, Twilio credentials, the public URL, trusted proxies).
 */
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import type { TwilioConfig } from './config.js';
import { schemaNameProblem } from './store/migrations.js';

/** The environment: variable name → value. */
export type Env = Record<string, string | undefined>;

/** Collects problems while reading variables, so all of them are reported at once. */
export class EnvReader {
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

/** Where the store lives (config.ts's Config has the same members). */
export interface StorageConfig {
  dataDir: string;
  databaseUrl: string | null;
  /** DATABASE_SCHEMA; null: the store's default (docs/API.md, "Database and migrations"). */
  databaseSchema: string | null;
}

/** DATA_DIR, DATABASE_URL and DATABASE_SCHEMA: all the server and server/migrate.ts need to find the store. */
export function loadStorage(r: EnvReader): StorageConfig {
  const dataDir = resolve(r.string('DATA_DIR') ?? './.data');
  const databaseUrl = r.string('DATABASE_URL') ?? null;
  if (databaseUrl !== null && !/^postgres(ql)?:\/\//.test(databaseUrl)) r.fail('DATABASE_URL must be a postgres:// or postgresql:// URL');
  const databaseSchema = r.string('DATABASE_SCHEMA') ?? null;
  const problem = databaseSchema === null ? undefined : schemaNameProblem(databaseSchema);
  if (problem !== undefined) r.fail(`DATABASE_SCHEMA ${problem}`);
  return { dataDir, databaseUrl, databaseSchema };
}

const TWILIO_VARS = {
  TWILIO_ACCOUNT_SID: /^AC[0-9a-fA-F]{32}$/,
  TWILIO_API_KEY: /^SK[0-9a-fA-F]{32}$/,
  TWILIO_API_SECRET: /^.{16,}$/,
  TWILIO_CONVERSATIONS_SERVICE_SID: /^IS[0-9a-fA-F]{32}$/,
} as const;

export function loadTwilio(r: EnvReader): TwilioConfig | null {
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

export function loadPublicUrl(r: EnvReader): string | null {
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
export function loadTrustProxy(r: EnvReader, demoMode: boolean): boolean | string | number {
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
