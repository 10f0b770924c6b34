/**
 * One SQLite database as the concern modules use it: prepared statements, the two kinds of write
 * transaction, and the group commit. better-sqlite3 is synchronous, so within one process nothing
 * interleaves; the write transactions are BEGIN IMMEDIATE so that a second process on the same
 * file waits on the busy timeout instead of failing halfway.
 */
import type Database from 'better-sqlite3';
import { required, type Row } from './rows.js';

type Queued = { run(): unknown; resolve(value: unknown): void; reject(error: unknown): void };

export class SqliteConnection {
  /** Writes requested in this turn of the event loop, committed together by flush(). */
  private queue: Queued[] = [];
  private readonly commitBatch;

  constructor(readonly db: Database.Database) {
    this.commitBatch = db.transaction((items: Queued[]) =>
      items.map((item) => {
        try {
          return { ok: true as const, value: item.run() };
        } catch (error) {
          return { ok: false as const, error };
        }
      }),
    );
  }

  /** Prepares every statement of a module once, by name. */
  prepare<K extends string>(sql: Record<K, string>): Record<K, Database.Statement> {
    return Object.fromEntries(Object.entries<string>(sql).map(([name, text]) => [name, this.db.prepare(text)])) as Record<
      K,
      Database.Statement
    >;
  }

  // Arrow properties, so a module can destructure them.
  readonly one = (statement: Database.Statement, ...params: unknown[]): Row | undefined =>
    statement.get(...params) as Row | undefined;

  /** For statements that always return a row. */
  readonly must = (statement: Database.Statement, ...params: unknown[]): Row => required(this.one(statement, ...params));

  readonly all = (statement: Database.Statement, ...params: unknown[]): Row[] => statement.all(...params) as Row[];

  /** A write transaction run now. IMMEDIATE takes the write lock up front: no read-then-upgrade deadlock with another process. */
  immediate<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R {
    const transaction = this.db.transaction(fn);
    return (...args: A): R => transaction.immediate(...args);
  }

  /**
   * Group commit for the durable writes of the hot paths (card registrations, relay messages,
   * history backups): the writes requested in one turn of the event loop run in one IMMEDIATE
   * transaction, each in its own savepoint (a failing one rolls back only itself), and share one
   * fsync, most of a write's cost under synchronous=FULL. No write resolves before its commit.
   */
  grouped<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => Promise<R> {
    const savepoint = this.db.transaction(fn); // nested in the batch's transaction: a savepoint
    return (...args: A): Promise<R> =>
      new Promise((resolve, reject) => {
        this.queue.push({ run: () => savepoint(...args), resolve: resolve as (value: unknown) => void, reject });
        if (this.queue.length === 1) setImmediate(() => this.flush());
      });
  }

  /** Commits the queued writes (close calls it too: writes already requested are committed, not dropped). */
  flush(): void {
    const items = this.queue;
    this.queue = [];
    if (items.length === 0 || !this.db.open) {
      for (const item of items) item.reject(new Error('store: closed'));
      return;
    }
    let results: ReturnType<typeof this.commitBatch>;
    try {
      results = this.commitBatch.immediate(items);
    } catch (err) {
      for (const item of items) item.reject(err); // the commit itself failed: nothing was written
      return;
    }
    results.forEach((r, i) => (r.ok ? items[i]!.resolve(r.value) : items[i]!.reject(r.error)));
  }

  close(): void {
    this.flush();
    if (this.db.open) this.db.close();
  }
}
