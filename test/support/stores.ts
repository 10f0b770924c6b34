/**
 * Runs a server suite once per store: SQLite in a temporary directory, and PostgreSQL at
 * TEST_DATABASE_URL in a fresh schema per suite (dropped afterwards). Without a reachable
 * PostgreSQL the PostgreSQL suites are skipped with a message, except under CI=true, where they
 * run (and fail).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe } from 'vitest';
import { openStore } from '../../server/store/index.js';
import type { Store } from '../../server/store/types.js';

export type StoreKind = 'sqlite' | 'postgres';

export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** Whether PostgreSQL answers at TEST_DATABASE_URL now. */
export async function postgresReachable(): Promise<boolean> {
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL, connectionTimeoutMillis: 3_000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.end();
    return true;
  } catch {
    return false;
  }
}

/** Whether PostgreSQL answered at TEST_DATABASE_URL when the tests started. */
export const postgresAvailable = await postgresReachable();
const postgresRequired = process.env.CI === 'true';
/** PostgreSQL suites run when it is reachable, and always in CI (where they then fail). */
export const runPostgres = postgresAvailable || postgresRequired;
/** TEST_DATABASE_URL without its password, for messages. */
export const SHOWN_DATABASE_URL = TEST_DATABASE_URL.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');

/** Drops a test schema and everything in it. */
export async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
  } finally {
    await client.end();
  }
}

if (!runPostgres) {
  console.warn(`PostgreSQL not reachable at ${SHOWN_DATABASE_URL}: skipping the PostgreSQL server suites (CI=true makes them fail instead)`);
}

/** One store location for a suite: every `open()` is another connection to the same data. */
export interface TestStores {
  kind: StoreKind;
  open(): Promise<Store>;
}

async function createLocation(kind: StoreKind): Promise<{ stores: TestStores; cleanup(): Promise<void> }> {
  const opened: Store[] = [];
  const track = async (store: Promise<Store>) => {
    const s = await store;
    opened.push(s);
    return s;
  };
  const closeAll = () => Promise.all(opened.map((s) => s.close().catch(() => {})));
  if (kind === 'sqlite') {
    const dataDir = await mkdtemp(join(tmpdir(), 'twilio-e2ee-server-'));
    return {
      stores: { kind, open: () => track(openStore({ dataDir })) },
      async cleanup() {
        await closeAll();
        await rm(dataDir, { recursive: true, force: true });
      },
    };
  }
  const schema = `server_test_${randomBytes(6).toString('hex')}`;
  return {
    stores: { kind, open: () => track(openStore({ databaseUrl: TEST_DATABASE_URL, schema, poolSize: 4 })) },
    async cleanup() {
      await closeAll();
      await dropSchema(schema);
    },
  };
}

/**
 * `describe(name [kind])` for each store kind, with a fresh location per kind. The suite gets a
 * getter (the location exists once beforeAll ran). Stores opened through it are closed after.
 */
export function describeEachStore(name: string, suite: (stores: () => TestStores) => void): void {
  for (const kind of ['sqlite', 'postgres'] as const) {
    describe.skipIf(kind === 'postgres' && !runPostgres)(`${name} [${kind}]`, () => {
      let location: Awaited<ReturnType<typeof createLocation>> | undefined;
      beforeAll(async () => {
        location = await createLocation(kind);
      });
      afterAll(async () => {
        await location?.cleanup();
      });
      suite(() => {
        if (!location) throw new Error('store location not ready (use it inside hooks and tests)');
        return location.stores;
      });
    });
  }
}
