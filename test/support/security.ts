/**
 * Fixtures of the security suite (test/security): a real server whose whole store can be dumped
 * (to prove a rejected request changed nothing), on SQLite in a temporary directory or on
 * PostgreSQL in a fresh schema; a log stream that keeps every line; and the checks every hostile
 * answer must pass (a 4xx in the error shape, never a 5xx, no polluted prototype).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import pg from 'pg';
import { buildApp } from '../../server/app.js';
import { loadConfig, type Config } from '../../server/config.js';
import type { LogLevel } from '../../server/config.js';
import { openStore } from '../../server/store/index.js';
import { SQLITE_FILENAME } from '../../server/store/sqlite.js';
import type { Store } from '../../server/store/types.js';
import { RATE_LIMITS_OFF } from './env.js';
import { dropSchema, TEST_DATABASE_URL, type StoreKind } from './stores.js';

/** Every line a pino logger writes, kept in order (pino writes one JSON line per call). */
export interface CapturedLog {
  stream: { write(line: string): void };
  lines: string[];
  text(): string;
}

export function captureLog(): CapturedLog {
  const lines: string[] = [];
  return {
    stream: { write: (line: string) => void lines.push(...line.split('\n').filter((l) => l.length > 0)) },
    lines,
    text: () => lines.join('\n'),
  };
}

export interface SecurityServer {
  app: FastifyInstance;
  config: Config;
  store: Store;
  kind: StoreKind;
  /** The server's DATA_DIR (its key file, in local demo mode, and the SQLite file). */
  dataDir: string;
  /** Every row of every table, as canonical text: equal dumps = an unchanged store. */
  dump(): Promise<string>;
  close(): Promise<void>;
}

export interface SecurityServerOptions {
  /** Environment on top of the base (rate limits off, a fresh DATA_DIR). */
  env?: Record<string, string | undefined>;
  store?: StoreKind;
  /** Log at this level into `log.stream` (else no logging). */
  log?: { level: LogLevel; stream: CapturedLog['stream'] };
  /** Serve the built demo web client at "/" (client/demo/dist). */
  demoDistDir?: string;
  /** Listen on 127.0.0.1 (for WebSocket and raw-socket tests); default inject only. */
  listen?: boolean;
}

/** Dumps a SQLite file through its own read-only connection (the server's stays untouched). */
function sqliteDumper(file: string): { dump(): Promise<string>; close(): void } {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((t) => t.name);
  const statements = tables.map((name) => [name, db.prepare(`SELECT * FROM "${name}" ORDER BY rowid`)] as const);
  return {
    async dump() {
      return JSON.stringify(statements.map(([name, statement]) => [name, statement.all()]));
    },
    close: () => db.close(),
  };
}

/** Dumps a PostgreSQL schema: every table's rows as JSON text, sorted. */
function postgresDumper(schema: string): { dump(): Promise<string>; close(): Promise<void> } {
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
  const connected = client.connect();
  return {
    async dump() {
      await connected;
      const tables = await client.query<{ table_name: string }>(
        'SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name',
        [schema],
      );
      const out: [string, string[]][] = [];
      for (const { table_name: name } of tables.rows) {
        const qualified = `${pg.escapeIdentifier(schema)}.${pg.escapeIdentifier(name)}`;
        const rows = await client.query<{ r: string }>(`SELECT row_to_json(t)::text AS r FROM ${qualified} t ORDER BY 1`);
        out.push([name, rows.rows.map((row) => row.r)]);
      }
      return JSON.stringify(out);
    },
    async close() {
      await connected.catch(() => {});
      await client.end().catch(() => {});
    },
  };
}

/**
 * A server with the real config loader, plugin, crypto and store. With no auth settings in `env`
 * it is the local demo (keys generated into its data directory).
 */
export async function securityServer(options: SecurityServerOptions = {}): Promise<SecurityServer> {
  const kind = options.store ?? 'sqlite';
  const dataDir = await mkdtemp(join(tmpdir(), 'e2ee-security-'));
  const schema = `security_test_${randomBytes(6).toString('hex')}`;
  const config = await loadConfig({
    DATA_DIR: dataDir,
    LOG_LEVEL: options.log?.level ?? 'silent',
    ...RATE_LIMITS_OFF,
    // The first checkpoint is published at start; no timer adds one during a test, so the store
    // changes only through requests (the hostile-request suite compares it around each one).
    LOG_CHECKPOINT_INTERVAL_MS: '3600000',
    ...options.env,
  });
  const store = kind === 'sqlite' ? await openStore({ dataDir }) : await openStore({ databaseUrl: TEST_DATABASE_URL, schema, poolSize: 4 });
  const app = await buildApp({
    config,
    store,
    logger: options.log ? { level: options.log.level, stream: options.log.stream } : false,
    ...(options.demoDistDir ? { demo: { distDir: options.demoDistDir } } : {}),
  });
  if (options.listen) await app.listen({ host: '127.0.0.1', port: 0 });
  else await app.ready();
  const dumper = kind === 'sqlite' ? sqliteDumper(join(dataDir, SQLITE_FILENAME)) : postgresDumper(schema);
  return {
    app,
    config,
    store,
    kind,
    dataDir,
    dump: () => dumper.dump(),
    async close() {
      await app.close();
      await dumper.close();
      await store.close();
      if (kind === 'postgres') await dropSchema(schema);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** The base URL of a listening server. */
export function baseUrl(app: FastifyInstance): string {
  const address = app.server.address();
  if (typeof address !== 'object' || address === null) throw new Error('the server is not listening');
  return `http://127.0.0.1:${address.port}`;
}

/** What a hostile answer may be, besides a 4xx in the error shape. */
export interface AnswerRules {
  /** Success statuses this route may give for input that happens to be valid. */
  success: readonly number[];
  /**
   * Codes of a 503 this instance gives whatever the input, for a feature it is not configured
   * for (the pre-event webhook without Twilio credentials: TWILIO_UNAVAILABLE). Not a fault.
   */
  notConfigured?: readonly string[];
}

/** The error code of an error-shaped body, or null. */
export function bodyCode(body: string): string | null {
  try {
    const code = (JSON.parse(body) as { error?: { code?: unknown } } | null)?.error?.code;
    return typeof code === 'string' ? code : null;
  } catch {
    return null;
  }
}

/**
 * Why an answer breaks the rules, or null when it keeps them: a status below 500; a 4xx with
 * `{"error": {"code", "message"}}` as JSON (HEAD: the JSON content type, no body); any other
 * status only when the route allows it.
 */
export function answerProblem(
  res: LightMyRequestResponse | { statusCode: number; body: string; headers: Record<string, unknown> },
  rules: AnswerRules,
  method = 'GET',
): string | null {
  const { statusCode, body } = res;
  if (statusCode === 503 && rules.notConfigured?.includes(bodyCode(body) ?? '')) return null;
  if (statusCode >= 500) return `${statusCode} ${body.slice(0, 300)}`;
  if (statusCode >= 400) {
    if (!String(res.headers['content-type'] ?? '').startsWith('application/json')) return `${statusCode} with content-type ${String(res.headers['content-type'])}`;
    if (method.toUpperCase() === 'HEAD') return body === '' ? null : `HEAD answered with a body`; // HEAD has headers only
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      return `${statusCode} with a body that is not JSON: ${body.slice(0, 200)}`;
    }
    const error = (parsed as { error?: { code?: unknown; message?: unknown } } | null)?.error;
    const keys = parsed !== null && typeof parsed === 'object' ? Object.keys(parsed) : [];
    if (typeof error?.code !== 'string' || typeof error.message !== 'string' || keys.length !== 1 || Object.keys(error).length !== 2) {
      return `${statusCode} not in the error shape: ${body.slice(0, 200)}`;
    }
    if (!/^[A-Z][A-Z0-9_]*$/.test(error.code)) return `${statusCode} with code ${error.code}`;
    return null;
  }
  return rules.success.includes(statusCode) ? null : `unexpected success ${statusCode}: ${body.slice(0, 200)}`;
}

/** Own property names of the built-in prototypes, to detect prototype pollution. */
export function prototypeFingerprint(): string {
  const protos: [string, object][] = [
    ['Object', Object.prototype],
    ['Array', Array.prototype],
    ['Function', Function.prototype],
    ['String', String.prototype],
  ];
  return JSON.stringify(protos.map(([name, proto]) => [name, Object.getOwnPropertyNames(proto).sort()]));
}

/** A tally of answers by status, for the figures in docs/SECURITY.md. */
export class Tally {
  readonly byStatus = new Map<number, number>();
  requests = 0;
  /** 5xx answers other than the `notConfigured` ones. */
  serverErrors = 0;
  /** 503 answers for a feature the instance is not configured for (see AnswerRules). */
  notConfigured = 0;
  accepted = 0;
  storeChangedByRejected = 0;

  add(res: { statusCode: number; body: string }, rules: AnswerRules): void {
    const status = res.statusCode;
    this.requests++;
    this.byStatus.set(status, (this.byStatus.get(status) ?? 0) + 1);
    if (status === 503 && rules.notConfigured?.includes(bodyCode(res.body) ?? '')) this.notConfigured++;
    else if (status >= 500) this.serverErrors++;
    if (status < 400) this.accepted++;
  }

  merge(other: Tally): void {
    this.requests += other.requests;
    this.serverErrors += other.serverErrors;
    this.notConfigured += other.notConfigured;
    this.accepted += other.accepted;
    this.storeChangedByRejected += other.storeChangedByRejected;
    for (const [status, n] of other.byStatus) this.byStatus.set(status, (this.byStatus.get(status) ?? 0) + n);
  }

  summary(): string {
    const statuses = [...this.byStatus.entries()].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}x${n}`).join(' ');
    const unconfigured = this.notConfigured > 0 ? ` (+${this.notConfigured} 503 not configured)` : '';
    return `${this.requests} requests, 5xx: ${this.serverErrors}${unconfigured}, accepted: ${this.accepted}, store changed by a rejected request: ${this.storeChangedByRejected} [${statuses}]`;
  }
}
