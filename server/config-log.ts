/**
 * The card transparency log's settings for server/config.ts (docs/API.md "Configuration"): the
 * LogKey that signs checkpoints (LOG_KEY, its own Ed25519 key, never the AppKey), the log's
 * origin (LOG_ORIGIN, also the LogKey's name in its signed notes), and how often a checkpoint
 * may be published (LOG_CHECKPOINT_INTERVAL_MS), and the witnesses that cosign them (LOG_WITNESSES).
 */
import { randomUUID } from 'node:crypto';
import { closeSync, linkSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { NOTE_TYPE_ED25519 } from '../shared/constants.js';
import { equalBytes, fromB64uExact } from '../shared/encoding.js';
import { randomBytes, seedToB64u } from '../shared/index.js';
import { isKeyName, type NoteSigner } from '../shared/signed-note.js';
import { ed25519NoteSigner, formatVerifierKey } from '../shared/signed-note-keys.js';
import type { EnvReader } from './config-env.js';
import { DEFAULT_WITNESS_TIMEOUT_MS, parseWitnessList, type WitnessEndpoint } from './witness/log-client.js';

export interface LogConfig {
  /** The checkpoints' origin line, and the LogKey's key name. */
  origin: string;
  /** Signs checkpoints (type 0x01 under the origin). */
  key: NoteSigner & { readonly publicKey: Uint8Array };
  /** The LogKey's verifier key text (golang.org/x/mod note format): what clients and witnesses pin. */
  verifierKey: string;
  /** Where the key came from (never the key), for the start-up log. */
  keySource: 'LOG_KEY' | 'key file';
  /** The key file used, or null. */
  keyFile: string | null;
  /** A checkpoint is published at most this often, and only when the log grew. */
  checkpointIntervalMs: number;
  /** The witnesses each new checkpoint is submitted to (LOG_WITNESSES; none by default). */
  witnesses: WitnessEndpoint[];
  /** How long each witness has to answer, ms (LOG_WITNESS_TIMEOUT_MS). */
  witnessTimeoutMs: number;
}

/** The origin without LOG_ORIGIN: the public URL's host and path with "/log", or a fixed name. */
export function defaultLogOrigin(publicUrl: string | null): string {
  return publicUrl === null ? 'twilio-e2ee/log' : `${publicUrl.replace(/^https?:\/\//, '')}/log`;
}

/** The LogKey named for `origin`, with its verifier key text. */
export function logKeyFor(origin: string, seed: Uint8Array): Pick<LogConfig, 'key' | 'verifierKey'> {
  const key = ed25519NoteSigner(origin, seed);
  return { key, verifierKey: formatVerifierKey(origin, NOTE_TYPE_ED25519, key.publicKey) };
}

export function loadLogConfig(
  r: EnvReader,
  opts: { dataDir: string; production: boolean; publicUrl: string | null; appKeySeed: Uint8Array | undefined },
): LogConfig | undefined {
  const origin = r.string('LOG_ORIGIN') ?? defaultLogOrigin(opts.publicUrl);
  const checkpointIntervalMs = r.int('LOG_CHECKPOINT_INTERVAL_MS', 2000, 100, 3_600_000);
  const witnessText = r.string('LOG_WITNESSES');
  const witnesses = (witnessText === undefined ? [] : r.parse('LOG_WITNESSES', () => parseWitnessList(witnessText))) ?? [];
  const settings = { checkpointIntervalMs, witnesses, witnessTimeoutMs: r.int('LOG_WITNESS_TIMEOUT_MS', DEFAULT_WITNESS_TIMEOUT_MS, 100, 60_000) };
  if (!isKeyName(origin)) {
    r.fail(`LOG_ORIGIN must be a name without spaces, "+" or control characters (like "chat.example.com/log"), got ${JSON.stringify(origin)}`);
    return undefined;
  }
  const text = r.string('LOG_KEY');
  if (text === undefined && opts.production) {
    // A key file on a container's disk would be a new LogKey on every deploy, which clients refuse.
    r.fail('LOG_KEY is required when NODE_ENV=production (generate one with `npx twilio-e2ee keygen`)');
    return undefined;
  }
  if (text !== undefined) {
    const seed = r.parse('LOG_KEY', () => fromB64uExact(text, 32, 'LOG_KEY'));
    if (seed && opts.appKeySeed && equalBytes(seed, opts.appKeySeed)) {
      r.fail('LOG_KEY must be a key of its own, not APP_KEY (generate one with `npx twilio-e2ee keygen`)');
      return undefined;
    }
    return seed && { origin, ...logKeyFor(origin, seed), keySource: 'LOG_KEY', keyFile: null, ...settings };
  }
  if (r.problems.length > 0) return undefined; // a configuration that will not start writes no key file
  const file = r.parse('DATA_DIR', () => loadOrCreateLogKeyFile(opts.dataDir));
  return file && { origin, ...logKeyFor(origin, file.seed), keySource: 'key file', keyFile: file.path, ...settings };
}

/**
 * DATA_DIR/log-key.json: `{"logKey"}` as a b64u seed, mode 0600, for local runs without LOG_KEY.
 * Made like keys.json (a temporary file hard-linked into place), so concurrent first starts agree.
 */
export function loadOrCreateLogKeyFile(dataDir: string): { seed: Uint8Array; path: string } {
  const path = join(dataDir, 'log-key.json');
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const tmp = `${path}.${randomUUID()}.tmp`;
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, `${JSON.stringify({ logKey: seedToB64u(randomBytes(32)) }, null, 2)}\n`);
    closeSync(fd);
    try {
      linkSync(tmp, path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  } finally {
    unlinkSync(tmp);
  }
  let logKey: unknown;
  try {
    logKey = (JSON.parse(readFileSync(path, 'utf8')) as { logKey?: unknown } | null)?.logKey;
  } catch {
    throw new Error(`${path} is not valid JSON; delete it to generate a new LogKey (clients pinning the old one will refuse the log)`);
  }
  if (typeof logKey !== 'string') throw new Error(`${path} lacks "logKey"`);
  return { seed: fromB64uExact(logKey, 32, 'logKey'), path };
}
