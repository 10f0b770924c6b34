/** A pg Pool as the PostgreSQL concern modules use it: one-statement queries and BEGIN/COMMIT transactions. */
import pg from 'pg';
import { E2EEError, ErrorCode } from '../../shared/errors.js';
import type { Row } from './rows.js';

/** Longest wait for a new connection, at start-up and in the pool. */
export const CONNECT_TIMEOUT_MS = 10_000;

export class PostgresConnection {
  constructor(readonly pool: pg.Pool) {}

  // Arrow properties, so a module can destructure them.
  readonly rows = async (sql: string, values: unknown[] = []): Promise<Row[]> => (await this.pool.query<Row>(sql, values)).rows;

  readonly first = async (sql: string, values: unknown[] = []): Promise<Row | undefined> => (await this.rows(sql, values))[0];

  /** `work` in a transaction on one pooled connection (inTransaction). */
  readonly transaction = async <T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> => {
    const client = await this.pool.connect();
    // A checked-out client has no pool error listener: a connection dropped between two statements
    // would crash the process. Ignoring the event is enough, the next statement rejects.
    const ignore = (): void => {};
    client.on('error', ignore);
    let broken: Error | undefined;
    try {
      return await inTransaction(client, work, (err) => {
        broken = err;
      });
    } finally {
      client.off('error', ignore);
      // A connection that could not roll back is destroyed, not returned to the pool.
      client.release(broken);
    }
  };
}

/**
 * BEGIN, `work`, COMMIT on `client`; when `work` or the COMMIT rejects, ROLLBACK and the error
 * rethrown. A ROLLBACK that fails too (the connection is gone) goes to `onRollbackError`.
 */
export async function inTransaction<C extends pg.ClientBase, T>(client: C, work: (client: C) => Promise<T>, onRollbackError: (err: Error) => void = () => {}): Promise<T> {
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(onRollbackError);
    throw err;
  }
}

/**
 * The one connection of start-up work (finding and migrating the tables), made before the pool:
 * a failure to connect is explained (connectFailed). The caller ends it.
 */
export async function connectAtStartup(connectionString: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  // A dropped connection rejects the statement in flight; without a listener it would also crash the process.
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => {});
    throw connectFailed(err, connectionString);
  }
  return client;
}

/**
 * The first connection (the start-up work's) could not be made: STORE_UNAVAILABLE naming the
 * setting and the host, port and database tried, never the password; a bare "ECONNREFUSED" leaves
 * an operator guessing which of the app's connections failed. Only at start-up: a client must not
 * learn the database's address from a later outage.
 */
function connectFailed(err: unknown, connectionString: string | undefined): E2EEError {
  const target = describeTarget(connectionString);
  const reason = (err as Error | null)?.message ?? String(err);
  return new E2EEError(ErrorCode.STORE_UNAVAILABLE, `cannot connect to PostgreSQL at ${target} (DATABASE_URL, openStore's databaseUrl): ${reason}`, {
    cause: err,
    details: { setting: 'DATABASE_URL', target },
  });
}

/** host:port/database of a postgres:// URL, with pg's defaults; the URL's user and password left out. */
function describeTarget(connectionString: string | undefined): string {
  try {
    const url = new URL(connectionString ?? '');
    const host = url.searchParams.get('host') ?? (url.hostname || 'localhost');
    return `${host}:${url.port || '5432'}${url.pathname.length > 1 ? url.pathname : ''}`;
  } catch {
    return 'the configured address';
  }
}

const UNIQUE_VIOLATION = '23505';

/** The name of the unique constraint `err` violated, or undefined for any other error. */
export function violatedUniqueConstraint(err: unknown): string | undefined {
  return err instanceof pg.DatabaseError && err.code === UNIQUE_VIOLATION ? (err.constraint ?? '') : undefined;
}
