/** A pg Pool as the PostgreSQL concern modules use it: one-statement queries and BEGIN/COMMIT transactions. */
import pg from 'pg';
import type { Row } from './rows.js';

export class PostgresConnection {
  constructor(readonly pool: pg.Pool) {}

  // Arrow properties, so a module can destructure them.
  readonly rows = async (sql: string, values: unknown[] = []): Promise<Row[]> => (await this.pool.query<Row>(sql, values)).rows;

  readonly first = async (sql: string, values: unknown[] = []): Promise<Row | undefined> => (await this.rows(sql, values))[0];

  /** BEGIN/COMMIT on one pooled connection; ROLLBACK when `work` rejects. */
  readonly transaction = async <T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> => {
    const client = await this.pool.connect();
    // A checked-out client has no pool error listener: a connection dropped between two statements
    // would crash the process. Ignoring the event is enough, the next statement rejects.
    const ignore = (): void => {};
    client.on('error', ignore);
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch((rollbackErr: Error) => {
        broken = rollbackErr;
      });
      throw err;
    } finally {
      client.off('error', ignore);
      // A connection that could not roll back is destroyed, not returned to the pool.
      client.release(broken);
    }
  };
}

const UNIQUE_VIOLATION = '23505';

/** The name of the unique constraint `err` violated, or undefined for any other error. */
export function violatedUniqueConstraint(err: unknown): string | undefined {
  return err instanceof pg.DatabaseError && err.code === UNIQUE_VIOLATION ? (err.constraint ?? '') : undefined;
}
