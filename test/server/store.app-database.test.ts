/**
 * The PostgreSQL store in an app's own database: its tables live in a schema of their own
 * (`twilio_e2ee`, or DATABASE_SCHEMA), beside the app's tables and never in their way, with a
 * migrations table of its own name; a database made by a release before that setting keeps its
 * tables where they are. Each scenario gets a database of its own (created and dropped here), since
 * what matters is the `public` schema, which the other suites share.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../server/config.js';
import { migrateStore, openStore, type OpenStoreOptions } from '../../server/store/index.js';
import { DEFAULT_SCHEMA, MIGRATIONS_TABLE, RELEASED_MIGRATIONS_TABLE } from '../../server/store/migrations.js';
import type { Store } from '../../server/store/types.js';
import { ErrorCode } from '../../shared/errors.js';
import { spawnServer } from '../support/server-process.js';
import { runPostgres, TEST_DATABASE_URL } from '../support/stores.js';
import { ALL_VERSIONS, makeCard, makeConversation, makeHistory, makeMessage, registerOptions, uid } from './store.fixtures.js';
import { RELEASED_POSTGRES_MIGRATIONS, RELEASED_POSTGRES_MIGRATIONS_TABLE } from './store.released-migrations.js';
import { expectReleasedDataServed, RELEASED_ROWS } from './store.released-data.js';

const MIGRATE = fileURLToPath(new URL('../../server/migrate.ts', import.meta.url));
const suffix = randomBytes(6).toString('hex');
const databases: string[] = [];
const roles: string[] = [];
const dirs: string[] = [];

/** TEST_DATABASE_URL pointed at another database, optionally as another user. */
function urlOf(database: string, user?: string): string {
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `/${database}`;
  if (user !== undefined) {
    url.username = user;
    url.password = '';
  }
  return url.href;
}

async function sql<T extends pg.QueryResultRow = pg.QueryResultRow>(url: string, text: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}

/** A new database, dropped after the tests; its name. */
async function createDatabase(name: string): Promise<string> {
  const database = `${name}_${suffix}`;
  databases.push(database);
  await sql(TEST_DATABASE_URL, `CREATE DATABASE ${pg.escapeIdentifier(database)}`);
  return database;
}

const tablesIn = async (url: string, schema: string): Promise<string[]> =>
  (await sql<{ name: string }>(url, 'SELECT table_name AS name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1', [schema])).map((r) => r.name);

const schemaExists = async (url: string, schema: string): Promise<boolean> =>
  (await sql(url, 'SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema])).length > 0;

const STORE_TABLES = ['card_authorizations', 'cards', 'conversations', 'history', 'log_checkpoints', 'log_cosignatures', 'log_events', 'log_nodes', 'media', 'messages', 'participants', 'pending_devices', 'settings', MIGRATIONS_TABLE].sort();

/** Opens a store, runs `work` on it and closes it. */
async function withStore<T>(options: OpenStoreOptions, work: (store: Store) => Promise<T>): Promise<T> {
  const store = await openStore(options);
  try {
    return await work(store);
  } finally {
    await store.close();
  }
}

/** Every kind of write the store makes, read back: cards, settings, the relay's conversations and messages, history. */
async function expectStoreWorks(store: Store): Promise<void> {
  const card = makeCard(uid('alice'));
  expect(await store.registerCard(card, registerOptions())).toEqual({ ok: true, superseded: null });
  expect(await store.getCard(card.id)).toEqual(card);
  const setting = uid('setting');
  expect(await store.putSettingIfAbsent(setting, 'v1')).toBe('v1');
  expect(await store.getSetting(setting)).toBe('v1');
  const conversation = makeConversation();
  await store.createConversation(conversation);
  const message = await store.appendMessage(makeMessage(conversation.sid));
  expect(message.index).toBe(0);
  expect((await store.messages(conversation.sid, { direction: 'forward', limit: 10 })).map((m) => m.sid)).toEqual([message.sid]);
  const history = makeHistory(conversation.sid, 0);
  expect(await store.putHistory(history)).toBe('created');
  expect(await store.getHistory(history.conversationSid, history.messageSid)).toEqual(history);
}

afterAll(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  if (!runPostgres) return;
  for (const database of databases) await sql(TEST_DATABASE_URL, `DROP DATABASE IF EXISTS ${pg.escapeIdentifier(database)} WITH (FORCE)`);
  for (const role of roles) await sql(TEST_DATABASE_URL, `DROP ROLE IF EXISTS ${pg.escapeIdentifier(role)}`);
});

describe.skipIf(!runPostgres)('postgres store in an app database', () => {
  let database: string;
  let url: string;
  /** The app's own tables and rows in `public`, named like the store's. */
  const appSnapshot = async () => ({
    tables: await tablesIn(url, 'public'),
    messages: await sql(url, 'SELECT * FROM public.messages ORDER BY id'),
    settings: await sql(url, 'SELECT * FROM public.settings ORDER BY name'),
    migrations: await sql(url, 'SELECT * FROM public.schema_migrations ORDER BY version'),
  });
  let before: Awaited<ReturnType<typeof appSnapshot>>;

  beforeAll(async () => {
    database = await createDatabase('store_app');
    url = urlOf(database);
    await sql(
      url,
      `CREATE TABLE messages (id SERIAL PRIMARY KEY, body TEXT NOT NULL);
       CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT);
       CREATE TABLE schema_migrations (version VARCHAR PRIMARY KEY);
       INSERT INTO messages (body) VALUES ('hello from the app'), ('second');
       INSERT INTO settings VALUES ('theme', 'dark');
       INSERT INTO schema_migrations VALUES ('20240101000000'), ('20240202000000');`,
    );
    before = await appSnapshot();
  });

  it(`works in "${DEFAULT_SCHEMA}" by default, leaving the app's messages, settings and schema_migrations as they were`, async () => {
    const warnings: string[] = [];
    await withStore({ databaseUrl: url, onWarning: (m) => warnings.push(m) }, expectStoreWorks);
    expect(await tablesIn(url, DEFAULT_SCHEMA)).toEqual(STORE_TABLES);
    const versions = await sql(url, `SELECT version FROM ${DEFAULT_SCHEMA}.${MIGRATIONS_TABLE} ORDER BY version`);
    expect(versions.map((r) => r.version)).toEqual(ALL_VERSIONS);
    expect(await appSnapshot()).toEqual(before);
    expect(warnings).toEqual([]);
    // Opened again: the data is there, nothing is migrated twice.
    expect(await migrateStore({ databaseUrl: url })).toEqual({ kind: 'postgres', schema: DEFAULT_SCHEMA, applied: [] });
  });

  it('refuses the app\'s schema when a table name is taken, naming it, and leaves nothing behind', async () => {
    const failure = await openStore({ databaseUrl: url, schema: 'public' }).then(
      (store) => store.close().then(() => null),
      (err: unknown) => err,
    );
    expect(failure).toMatchObject({ code: ErrorCode.CONFIG_INVALID });
    expect((failure as Error).message).toContain('schema "public" already has tables of another application');
    expect((failure as Error).message).toContain('relation "settings" already exists');
    // One transaction: not even the migrations table stayed.
    expect(await appSnapshot()).toEqual(before);
  });

  it('uses DATABASE_SCHEMA=custom_name: the migration command and the server configuration', async () => {
    const cwd = await mkdtemp(join(tmpdir(), 'twilio-e2ee-migrate-')); // no .env there
    dirs.push(cwd);
    const run = async () => {
      const command = spawnServer({ entry: MIGRATE, cwd, env: { DATABASE_URL: url, DATABASE_SCHEMA: 'custom_name' } });
      return { code: await command.exited, output: command.output() };
    };
    expect(await run()).toEqual({ code: 0, output: `twilio-e2ee migrate: PostgreSQL schema "custom_name": applied ${ALL_VERSIONS.join(', ')}\n` });
    expect(await run()).toEqual({ code: 0, output: 'twilio-e2ee migrate: PostgreSQL schema "custom_name": up to date\n' });

    const config = await loadConfig({ DEMO_MODE: 'true', DATA_DIR: cwd, DATABASE_URL: url, DATABASE_SCHEMA: 'custom_name' });
    expect(config.databaseSchema).toBe('custom_name');
    const card = makeCard(uid('alice'));
    // As server/main.ts opens it; migrate: false, since the command ran the migrations.
    await withStore({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, schema: config.databaseSchema, migrate: false }, async (store) => {
      expect((await store.registerCard(card, registerOptions())).ok).toBe(true);
    });
    expect(await sql(url, 'SELECT id FROM custom_name.cards')).toEqual([{ id: card.id }]);
    expect(await tablesIn(url, 'custom_name')).toEqual(STORE_TABLES);
    expect(await appSnapshot()).toEqual(before);
  });

  it('refuses an invalid DATABASE_SCHEMA at configuration, naming it', async () => {
    await expect(loadConfig({ DEMO_MODE: 'true', DATA_DIR: tmpdir(), DATABASE_SCHEMA: 'pg_mine' })).rejects.toMatchObject({
      code: ErrorCode.CONFIG_INVALID,
      details: { problems: ['DATABASE_SCHEMA must not start with pg_ (reserved by PostgreSQL)'] },
    });
    await expect(openStore({ databaseUrl: url, schema: 'x'.repeat(64) })).rejects.toMatchObject({ code: ErrorCode.CONFIG_INVALID });
  });

  it('keeps two stores on two schemas of one database apart', async () => {
    const [a, b] = await Promise.all([openStore({ databaseUrl: url, schema: `tenant_a_${suffix}` }), openStore({ databaseUrl: url, schema: `tenant_b_${suffix}` })]);
    try {
      const alice = uid('alice');
      const card = makeCard(alice);
      expect((await a.registerCard(card, registerOptions())).ok).toBe(true);
      expect(await b.getCard(card.id)).toBeNull();
      expect((await b.activeCards([alice])).get(alice) ?? []).toEqual([]);
      // Its ids and keys are free there too: nothing is shared.
      expect(await b.registerCard(card, registerOptions())).toEqual({ ok: true, superseded: null });
      const setting = uid('setting');
      await a.putSettingIfAbsent(setting, 'a');
      expect(await b.putSettingIfAbsent(setting, 'b')).toBe('b');
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('opens with migrate: false as a role that cannot create anything, once the migrations ran ahead', async () => {
    const schema = `app_role_${suffix}`;
    const role = `e2ee_app_${suffix}`;
    roles.push(role);
    const asRole = urlOf(database, role);
    await sql(url, `CREATE ROLE ${role} LOGIN`);
    // Nothing migrated yet: refused with the versions missing, nothing created.
    await expect(openStore({ databaseUrl: asRole, schema, migrate: false })).rejects.toMatchObject({
      code: ErrorCode.STORE_UNAVAILABLE,
      details: { pending: ALL_VERSIONS },
    });
    expect(await schemaExists(url, schema)).toBe(false);

    expect(await migrateStore({ databaseUrl: url, schema })).toEqual({ kind: 'postgres', schema, applied: ALL_VERSIONS });
    await sql(
      url,
      `GRANT USAGE ON SCHEMA ${schema} TO ${role};
       GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${schema} TO ${role};
       GRANT USAGE ON ALL SEQUENCES IN SCHEMA ${schema} TO ${role};`,
    );
    // Up to date, so opening runs no DDL: with or without migrate: false.
    await withStore({ databaseUrl: asRole, schema, migrate: false }, expectStoreWorks);
    await withStore({ databaseUrl: asRole, schema }, expectStoreWorks);
  });
});

describe.skipIf(!runPostgres)('postgres store in a database made by a release before DATABASE_SCHEMA', () => {
  let url: string;
  beforeAll(async () => {
    url = urlOf(await createDatabase('store_released'));
    // As those releases left it: the tables in public, the migrations table named schema_migrations.
    const statements = [RELEASED_POSTGRES_MIGRATIONS_TABLE];
    for (const [i, migration] of RELEASED_POSTGRES_MIGRATIONS.entries()) {
      statements.push(migration, `INSERT INTO schema_migrations (version, applied_at_ms) VALUES (${i + 1}, 0)`);
    }
    for (const statement of [...statements, ...RELEASED_ROWS]) await sql(url, statement);
  });

  // The steps below run in order, on one database, as an operator would go through them.

  it('refuses a configured schema that is still empty, rather than starting an empty directory beside the tables', async () => {
    const failure = await openStore({ databaseUrl: url, schema: DEFAULT_SCHEMA }).then(
      (store) => store.close().then(() => null),
      (err: unknown) => err,
    );
    expect(failure).toMatchObject({ code: ErrorCode.CONFIG_INVALID });
    expect((failure as Error).message).toContain(`schema "${DEFAULT_SCHEMA}" holds no tables of this store, but schema "public" holds the ones an earlier release made`);
    expect(await schemaExists(url, DEFAULT_SCHEMA)).toBe(false);
    expect(await tablesIn(url, 'public')).toContain(RELEASED_MIGRATIONS_TABLE);
  });

  it('without a configured schema, keeps the tables in public with a warning, and migrates them there', async () => {
    const warnings: string[] = [];
    await withStore({ databaseUrl: url, onWarning: (m) => warnings.push(m) }, expectReleasedDataServed);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('the store\'s tables are in schema "public", where a release before DATABASE_SCHEMA made them, and stay there');
    expect(await schemaExists(url, DEFAULT_SCHEMA)).toBe(false);
    // The migrations table took this release's name, its primary key index too.
    expect(await tablesIn(url, 'public')).toEqual(STORE_TABLES);
    const versions = await sql(url, `SELECT version FROM public.${MIGRATIONS_TABLE} ORDER BY version`);
    expect(versions.map((r) => r.version)).toEqual(ALL_VERSIONS);
    expect(await sql(url, `SELECT indexname FROM pg_indexes WHERE schemaname = 'public' AND tablename = $1`, [MIGRATIONS_TABLE])).toEqual([
      { indexname: `${MIGRATIONS_TABLE}_pkey` },
    ]);
  });

  it('with DATABASE_SCHEMA=public, uses them without a warning', async () => {
    const warnings: string[] = [];
    await withStore({ databaseUrl: url, schema: 'public', onWarning: (m) => warnings.push(m) }, expectStoreWorks);
    expect(warnings).toEqual([]);
  });

  it('leaves the name schema_migrations to the app', async () => {
    await sql(url, 'CREATE TABLE schema_migrations (version VARCHAR PRIMARY KEY); INSERT INTO schema_migrations VALUES (\'20240101000000\')');
    await withStore({ databaseUrl: url, onWarning: () => {} }, expectStoreWorks);
    expect(await sql(url, 'SELECT version FROM public.schema_migrations')).toEqual([{ version: '20240101000000' }]);
  });
});
