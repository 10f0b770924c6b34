/**
 * The two schemas agree, and databases made by earlier releases migrate. The tables are read back
 * from the databases themselves (SQLite's pragma tables, PostgreSQL's catalogs), not from the DDL
 * text, and compared as shapes: columns with type, nullability and default, primary keys, unique
 * constraints, other indexes (with their WHERE clause) and foreign keys.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { openPostgresStore } from '../../server/store/postgres.js';
import { openSqliteStore, SQLITE_FILENAME } from '../../server/store/sqlite.js';
import { dropSchema, runPostgres, TEST_DATABASE_URL } from '../support/stores.js';
import { MIGRATIONS_TABLE, RELEASED_MIGRATIONS_TABLE } from '../../server/store/migrations.js';
import { ALL_VERSIONS } from './store.fixtures.js';
import { expectReleasedDataServed, RELEASED_ROWS } from './store.released-data.js';
import {
  RELEASED_POSTGRES_MIGRATIONS,
  RELEASED_POSTGRES_MIGRATIONS_TABLE,
  RELEASED_SQLITE_MIGRATIONS,
  RELEASED_SQLITE_MIGRATIONS_TABLE,
} from './store.released-migrations.js';

interface IndexShape {
  name: string;
  columns: string[];
  unique: boolean;
  where: string | null;
}

interface TableShape {
  columns: { name: string; type: string; nullable: boolean; default: string | null }[];
  primaryKey: string[];
  /** Column lists of the unique constraints (their names differ between the databases). */
  unique: string[][];
  indexes: IndexShape[];
  foreignKeys: { columns: string[]; table: string; refColumns: string[] }[];
}

type SchemaShape = Record<string, TableShape>;

/** 64-bit or 32-bit, an integer is an integer: the store reads every one as a safe integer; bytes are bytes. */
const typeName = (type: string): string => (/int/i.test(type) ? 'integer' : /^(blob|bytea)$/i.test(type) ? 'bytes' : type.toLowerCase());
/** PostgreSQL adds casts to defaults (`'{}'::text`). */
const defaultValue = (value: string | null): string | null => value?.replace(/::[a-z ]+$/i, '') ?? null;
/** PostgreSQL prints a predicate with parentheses; SQLite keeps it as written. */
const predicate = (where: string | null): string | null => where?.replace(/[()]/g, '').replace(/\s+/g, ' ').trim().toLowerCase() ?? null;
const byName = <T extends { name: string }>(a: T, b: T): number => a.name.localeCompare(b.name);
const sorted = (lists: string[][]): string[][] => lists.map((l) => [...l]).sort((a, b) => a.join().localeCompare(b.join()));

function sqliteShape(db: Database.Database): SchemaShape {
  const tables = db.prepare(`SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`).pluck().all() as string[];
  const shape: SchemaShape = {};
  for (const table of tables) {
    const info = db.prepare('SELECT * FROM pragma_table_info(?)').all(table) as { name: string; type: string; notnull: number; dflt_value: string | null; pk: number }[];
    const indexList = db.prepare('SELECT * FROM pragma_index_list(?)').all(table) as { name: string; unique: number; origin: string }[];
    const indexColumns = (index: string) =>
      (db.prepare('SELECT name FROM pragma_index_info(?) ORDER BY seqno').pluck().all(index) as string[]);
    const indexWhere = (index: string): string | null => {
      const sql = db.prepare(`SELECT sql FROM sqlite_schema WHERE type = 'index' AND name = ?`).pluck().get(index) as string | null;
      return sql?.match(/\bWHERE\b(.*)$/is)?.[1] ?? null;
    };
    const foreignKeys = db.prepare('SELECT * FROM pragma_foreign_key_list(?) ORDER BY id, seq').all(table) as { table: string; from: string; to: string }[];
    shape[table] = {
      // A primary key column is never null (STRICT tables enforce it; table_info does not say so).
      columns: info.map((c) => ({ name: c.name, type: typeName(c.type), nullable: c.notnull === 0 && c.pk === 0, default: defaultValue(c.dflt_value) })).sort(byName),
      primaryKey: info.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk).map((c) => c.name),
      unique: sorted(indexList.filter((i) => i.origin === 'u').map((i) => indexColumns(i.name))),
      indexes: indexList
        .filter((i) => i.origin === 'c')
        .map((i) => ({ name: i.name, columns: indexColumns(i.name), unique: i.unique === 1, where: predicate(indexWhere(i.name)) }))
        .sort(byName),
      foreignKeys: foreignKeys.map((f) => ({ columns: [f.from], table: f.table, refColumns: [f.to] })),
    };
  }
  return shape;
}

const PG_SQL = {
  columns: `SELECT table_name, column_name, data_type, is_nullable, column_default FROM information_schema.columns
    WHERE table_schema = $1 ORDER BY table_name, column_name`,
  indexes: `SELECT t.relname::text AS table_name, i.relname::text AS name, ix.indisprimary AS is_primary, ix.indisunique AS is_unique,
      EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = ix.indexrelid AND c.contype = 'u') AS is_constraint,
      pg_get_expr(ix.indpred, ix.indrelid) AS predicate,
      ARRAY(SELECT a.attname::text FROM unnest(ix.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
        JOIN pg_attribute a ON a.attrelid = ix.indrelid AND a.attnum = k.attnum ORDER BY k.ord) AS columns
    FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid JOIN pg_class t ON t.oid = ix.indrelid
      JOIN pg_namespace n ON n.oid = t.relnamespace
    WHERE n.nspname = $1`,
  foreignKeys: `SELECT t.relname::text AS table_name, r.relname::text AS ref_table,
      ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum ORDER BY k.ord) AS columns,
      ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY AS k(attnum, ord)
        JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum ORDER BY k.ord) AS ref_columns
    FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid JOIN pg_class r ON r.oid = c.confrelid
      JOIN pg_namespace n ON n.oid = t.relnamespace
    WHERE c.contype = 'f' AND n.nspname = $1`,
} as const;

async function postgresShape(client: pg.Client, schema: string): Promise<SchemaShape> {
  const shape: SchemaShape = {};
  const table = (name: string): TableShape => (shape[name] ??= { columns: [], primaryKey: [], unique: [], indexes: [], foreignKeys: [] });
  for (const c of (await client.query(PG_SQL.columns, [schema])).rows) {
    table(c.table_name).columns.push({ name: c.column_name, type: typeName(c.data_type), nullable: c.is_nullable === 'YES', default: defaultValue(c.column_default) });
  }
  for (const i of (await client.query(PG_SQL.indexes, [schema])).rows) {
    const t = table(i.table_name);
    if (i.is_primary) t.primaryKey = i.columns;
    else if (i.is_constraint) t.unique.push(i.columns);
    else t.indexes.push({ name: i.name, columns: i.columns, unique: i.is_unique, where: predicate(i.predicate) });
  }
  for (const f of (await client.query(PG_SQL.foreignKeys, [schema])).rows) {
    table(f.table_name).foreignKeys.push({ columns: f.columns, table: f.ref_table, refColumns: f.ref_columns });
  }
  for (const t of Object.values(shape)) {
    t.columns.sort(byName);
    t.unique = sorted(t.unique);
    t.indexes.sort(byName);
  }
  return shape;
}

/**
 * PostgreSQL has no rowid: its `seq` identity column keeps the insertion order, also as the last
 * key of the ordering indexes. Without it the two shapes must be equal.
 */
function withoutOrderColumn(shape: SchemaShape): SchemaShape {
  return Object.fromEntries(
    Object.entries(shape).map(([name, t]) => [
      name,
      {
        ...t,
        columns: t.columns.filter((c) => c.name !== 'seq'),
        indexes: t.indexes.map((i) => ({ ...i, columns: i.columns.filter((c) => c !== 'seq') })),
      },
    ]),
  );
}

const dirs: string[] = [];
const schemas: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  if (runPostgres) await Promise.all(schemas.map(dropSchema));
});

async function sqliteFile(): Promise<{ dataDir: string; path: string }> {
  const dataDir = await mkdtemp(join(tmpdir(), 'twilio-e2ee-schema-'));
  dirs.push(dataDir);
  return { dataDir, path: join(dataDir, SQLITE_FILENAME) };
}

function readSqlite<T>(path: string, read: (db: Database.Database) => T): T {
  const db = new Database(path);
  try {
    return read(db);
  } finally {
    db.close();
  }
}

async function freshSqliteShape(): Promise<SchemaShape> {
  const { dataDir, path } = await sqliteFile();
  await (await openSqliteStore({ dataDir })).close();
  return readSqlite(path, sqliteShape);
}

async function withPostgres<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

function newSchemaName(): string {
  const schema = `store_schema_${randomBytes(6).toString('hex')}`;
  schemas.push(schema);
  return schema;
}

async function freshPostgresShape(): Promise<SchemaShape> {
  const schema = newSchemaName();
  await (await openPostgresStore({ connectionString: TEST_DATABASE_URL, schema })).close();
  return withPostgres((client) => postgresShape(client, schema));
}

describe('store schema', () => {
  it('SQLite and PostgreSQL build the same tables, columns, keys and indexes', { skip: !runPostgres }, async () => {
    const [sqlite, postgres] = await Promise.all([freshSqliteShape(), freshPostgresShape()]);
    expect(Object.keys(sqlite).sort()).toEqual(['card_authorizations', 'cards', 'conversations', 'history', 'log_checkpoints', 'log_cosignatures', 'log_events', 'log_nodes', 'media', 'messages', 'participants', 'pending_devices', 'settings', MIGRATIONS_TABLE]);
    expect(withoutOrderColumn(postgres)).toEqual(sqlite);
  });

  it.each([2, 3])('a SQLite database made by the releases up to migration %i migrates and keeps its data', async (upTo) => {
    const { dataDir, path } = await sqliteFile();
    readSqlite(path, (db) => {
      db.exec(RELEASED_SQLITE_MIGRATIONS_TABLE);
      RELEASED_SQLITE_MIGRATIONS.slice(0, upTo).forEach((sql, i) => {
        db.exec(sql);
        db.prepare('INSERT INTO schema_migrations (version, applied_at_ms) VALUES (?, 0)').run(i + 1);
      });
      for (const sql of RELEASED_ROWS) db.exec(sql);
    });
    const store = await openSqliteStore({ dataDir });
    try {
      await expectReleasedDataServed(store);
    } finally {
      await store.close();
    }
    // The released migrations table now has this release's name, and nothing else was left behind.
    readSqlite(path, (db) => expect(db.prepare(`SELECT version FROM ${MIGRATIONS_TABLE} ORDER BY version`).pluck().all()).toEqual(ALL_VERSIONS));
    expect(readSqlite(path, sqliteShape)).toEqual(await freshSqliteShape());
  });

  it.each([2, 3])('a PostgreSQL schema made by the releases up to migration %i migrates and keeps its data', { skip: !runPostgres }, async (upTo) => {
    const schema = newSchemaName();
    await withPostgres(async (client) => {
      await client.query(`CREATE SCHEMA ${pg.escapeIdentifier(schema)}; SET search_path TO ${pg.escapeIdentifier(schema)}`);
      await client.query(RELEASED_POSTGRES_MIGRATIONS_TABLE);
      for (const [i, sql] of RELEASED_POSTGRES_MIGRATIONS.slice(0, upTo).entries()) {
        await client.query(sql);
        await client.query('INSERT INTO schema_migrations (version, applied_at_ms) VALUES ($1, 0)', [i + 1]);
      }
      for (const sql of RELEASED_ROWS) await client.query(sql);
    });
    const store = await openPostgresStore({ connectionString: TEST_DATABASE_URL, schema });
    try {
      await expectReleasedDataServed(store);
    } finally {
      await store.close();
    }
    const [migrated, fresh, versions] = await withPostgres(async (client) => [
      await postgresShape(client, schema),
      await freshPostgresShape(),
      (await client.query(`SELECT version FROM ${pg.escapeIdentifier(schema)}.${MIGRATIONS_TABLE} ORDER BY version`)).rows,
    ] as const);
    expect(versions.map((row) => row.version)).toEqual(ALL_VERSIONS);
    // The released migrations table was renamed (not copied): the shapes, tables included, are equal.
    expect(migrated).toEqual(fresh);
    expect(Object.keys(migrated)).not.toContain(RELEASED_MIGRATIONS_TABLE);
  });
});
