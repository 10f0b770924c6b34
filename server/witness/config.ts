/**
 * The witness's settings: environment variables, each of which a command-line flag overrides
 * (`--state` for WITNESS_STATE, ...), every problem reported at once (CONFIG_INVALID). The key is
 * never echoed in a message. docs/API.md "Running a witness".
 */
import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { E2EEError, ErrorCode } from '../../shared/errors.js';
import { cosignatureSignerFromKey } from '../../shared/log-cosignature.js';
import { EnvReader, type Env } from '../config-env.js';
import { trustedLogs } from './witness.js';

export interface WitnessConfig {
  /** The signer key text (secret). */
  key: string;
  /** The logs' verifier keys. */
  logs: string[];
  statePath: string;
  host: string;
  port: number;
  prefix: string;
  /** Problems worth a warning that do not stop the witness (a key file others can read). */
  warnings: string[];
}

/** Each flag and the variable it overrides. */
const FLAGS = {
  key: 'WITNESS_KEY_FILE',
  logs: 'WITNESS_LOGS',
  state: 'WITNESS_STATE',
  host: 'WITNESS_HOST',
  port: 'WITNESS_PORT',
  prefix: 'WITNESS_PREFIX',
} as const;

export const DEFAULT_WITNESS_PORT = 8380;

/** The command's words and the environment with its flags applied. Throws CONFIG_INVALID for an unknown flag. */
export function parseWitnessArgs(args: readonly string[], env: Env): { positionals: string[]; env: Env } {
  const options = Object.fromEntries(Object.keys(FLAGS).map((flag) => [flag, { type: 'string' as const, multiple: flag === 'logs' }]));
  let parsed;
  try {
    parsed = parseArgs({ args: [...args], options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new E2EEError(ErrorCode.CONFIG_INVALID, (err as Error).message, { details: { problems: [(err as Error).message] } });
  }
  const merged: Env = { ...env };
  for (const [flag, name] of Object.entries(FLAGS)) {
    const value = parsed.values[flag];
    if (value !== undefined) merged[name] = Array.isArray(value) ? value.join(',') : String(value);
  }
  return { positionals: parsed.positionals, env: merged };
}

/** The signer key in a key file: the bare key, or the `WITNESS_KEY=` line `witness keygen` prints. */
function keyFromFile(text: string): string {
  for (const line of text.split('\n')) {
    const match = /^(?:WITNESS_KEY=)?(PRIVATE\+KEY\+\S+)\s*$/.exec(line.trim());
    if (match) return match[1]!;
  }
  throw new Error('it holds no "PRIVATE+KEY+..." line');
}

/**
 * The witness's configuration. Throws CONFIG_INVALID with `details.problems`, one line per
 * variable at fault. `needs` leaves out what a command does not use (`init` listens nowhere).
 */
export function loadWitnessConfig(env: Env, needs: { logs: boolean } = { logs: true }): WitnessConfig {
  const r = new EnvReader(env);
  const warnings: string[] = [];
  let key = r.string('WITNESS_KEY');
  const keyFile = r.string('WITNESS_KEY_FILE');
  if (key && keyFile) r.fail('set WITNESS_KEY or WITNESS_KEY_FILE, not both');
  else if (keyFile) {
    key = r.parse('WITNESS_KEY_FILE', () => {
      const path = resolve(keyFile);
      if ((statSync(path).mode & 0o077) !== 0) warnings.push(`the key file ${path} can be read by other users: chmod 600 it`);
      return keyFromFile(readFileSync(path, 'utf8'));
    });
  } else if (!key) r.fail('WITNESS_KEY (or WITNESS_KEY_FILE) is required: the witness key from `witness keygen <name>`');
  if (key) r.parse(keyFile ? 'WITNESS_KEY_FILE' : 'WITNESS_KEY', () => cosignatureSignerFromKey(key!));
  const logs = (r.string('WITNESS_LOGS') ?? '').split(/[\s,]+/).filter(Boolean);
  if (needs.logs) {
    if (logs.length === 0) r.fail('WITNESS_LOGS is required: the verifier keys of the logs to witness (the service\'s LogKey verifier key), comma-separated');
    else r.parse('WITNESS_LOGS', () => trustedLogs(logs));
  }
  const prefix = r.string('WITNESS_PREFIX') ?? '';
  if (prefix && !/^\/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$/.test(prefix)) r.fail(`WITNESS_PREFIX must be a URL path starting with "/", got "${prefix}"`);
  const config: WitnessConfig = {
    key: key ?? '',
    logs,
    statePath: resolve(r.string('WITNESS_STATE') ?? 'witness-state.json'),
    host: r.string('WITNESS_HOST') ?? '127.0.0.1',
    port: r.int('WITNESS_PORT', DEFAULT_WITNESS_PORT, 0, 65535),
    prefix: prefix.replace(/\/+$/, ''),
    warnings,
  };
  if (r.problems.length > 0) {
    throw new E2EEError(ErrorCode.CONFIG_INVALID, `invalid witness configuration:\n  - ${r.problems.join('\n  - ')}`, { details: { problems: r.problems } });
  }
  return config;
}
