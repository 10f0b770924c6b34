/**
 * Where the PostgreSQL store's tables live, and bringing them up to date (docs/API.md, "Database
 * and migrations"). They live in one schema of their own, DEFAULT_SCHEMA unless configured, so
 * they never meet an app's tables in the same database; postgres.ts points every pooled
 * connection at it. Both steps run on one connection made before the pool, in one transaction.
 */
import pg from 'pg';
import { E2EEError, ErrorCode } from '../../shared/errors.js';
import { connectAtStartup, inTransaction } from './connection.postgres.js';
import {
  DEFAULT_SCHEMA,
  type Migration,
  MIGRATIONS_TABLE,
  migrationsPending,
  migrationsTable,
  numberedPlaceholders,
  pendingMigrations,
  POSTGRES_DIALECT,
  RELEASED_MIGRATIONS_TABLE,
  schemaNameProblem,
} from './migrations.js';
import { int } from './rows.js';

export interface PostgresTarget {
  connectionString: string;
  /** The configured schema (DATABASE_SCHEMA); undefined: DEFAULT_SCHEMA, or where a release without the setting made the tables. */
  schema?: string | null | undefined;
  /** Told when the tables are used where a release without the schema setting made them. Default: console.warn. */
  onWarning?: ((message: string) => void) | undefined;
}

/** The store's tables: their schema and the name of the migrations table there (null: no tables yet). */
interface Location {
  schema: string;
  table: string | null;
}

const SQL = {
  // Database-wide, not per schema: the search below looks beyond the configured schema, and
  // migrations are short and run once per process start.
  lock: `SELECT pg_advisory_xact_lock(hashtext('twilio-e2ee:migrations'))`,
  // The schema unqualified names resolve to on a connection this code did not point anywhere.
  defaultSchema: 'SELECT current_schema() AS name',
  // Ours: the migrations table has applied_at_ms and there is a cards table with app_signature
  // beside it. An app's own `schema_migrations` (Rails, golang-migrate, ...) has neither.
  ours: `SELECT count(*)::int AS n FROM information_schema.columns WHERE table_schema = $1
    AND ((table_name = $2 AND column_name = 'applied_at_ms') OR (table_name = 'cards' AND column_name = 'app_signature'))`,
  // Checked first: CREATE SCHEMA IF NOT EXISTS needs the CREATE privilege even when the schema exists.
  schemaExists: 'SELECT 1 FROM pg_namespace WHERE nspname = $1',
  createSchema: (schema: string) => `CREATE SCHEMA ${pg.escapeIdentifier(schema)}`,
  useSchema: (schema: string) => `SET LOCAL search_path TO ${pg.escapeIdentifier(schema)}`,
  appliedVersions: (location: Location) => `SELECT version FROM ${pg.escapeIdentifier(location.schema)}.${location.table}`,
  record: `INSERT INTO ${MIGRATIONS_TABLE} (version, applied_at_ms) VALUES ($1, $2)`,
  // Its primary key's index too: an app adding its own schema_migrations to the schema needs that name.
  renameReleased: `ALTER TABLE ${RELEASED_MIGRATIONS_TABLE} RENAME TO ${MIGRATIONS_TABLE};
    ALTER INDEX IF EXISTS ${RELEASED_MIGRATIONS_TABLE}_pkey RENAME TO ${MIGRATIONS_TABLE}_pkey`,
} as const;

/** PostgreSQL's duplicate_table, also raised for an index whose name is taken. */
const DUPLICATE_TABLE = '42P07';

/**
 * Brings the tables up to date, under an advisory lock (instances starting together: one
 * migrates, the others then find nothing to do). Runs no DDL when there is nothing to do.
 * @returns the schema holding the tables and the versions applied now, in order.
 */
export async function migratePostgres(target: PostgresTarget): Promise<{ schema: string; applied: number[] }> {
  return atStartup(target, async (client) => {
    await client.query(SQL.lock);
    const location = await locate(client, target);
    const pending = await pendingAt(client, location);
    // Up to date: no DDL at all, so a role without the CREATE privilege can start the server.
    if (pending.length === 0 && location.table === MIGRATIONS_TABLE) return { schema: location.schema, applied: [] };
    if ((await client.query(SQL.schemaExists, [location.schema])).rowCount === 0) await client.query(SQL.createSchema(location.schema));
    await client.query(SQL.useSchema(location.schema));
    if (location.table === RELEASED_MIGRATIONS_TABLE) await client.query(SQL.renameReleased);
    if (location.table === null) await client.query(migrationsTable(POSTGRES_DIALECT));
    for (const migration of pending) {
      await client.query(migration.sql(POSTGRES_DIALECT)).catch((err: unknown) => {
        throw err instanceof pg.DatabaseError && err.code === DUPLICATE_TABLE ? nameTaken(location.schema, err) : err;
      });
      if (migration.data) {
        const rows = (await client.query(migration.data.select)).rows;
        for (const [sql, values] of migration.data.statements(rows)) await client.query(numberedPlaceholders(sql), [...values]);
      }
      await client.query(SQL.record, [migration.version, Date.now()]);
    }
    return { schema: location.schema, applied: pending.map((m) => m.version) };
  });
}

/**
 * For `migrate: false`: finds the tables and checks they are up to date, changing nothing.
 * @throws E2EEError STORE_UNAVAILABLE when migrations are pending (`details.pending`).
 */
export async function checkPostgres(target: PostgresTarget): Promise<{ schema: string }> {
  return atStartup(target, async (client) => {
    const location = await locate(client, target);
    const pending = await pendingAt(client, location);
    if (pending.length > 0) throw migrationsPending(`schema "${location.schema}"`, pending);
    return { schema: location.schema };
  });
}

async function atStartup<T>(target: PostgresTarget, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const problem = target.schema == null ? undefined : schemaNameProblem(target.schema);
  if (problem !== undefined) {
    throw new E2EEError(ErrorCode.CONFIG_INVALID, `DATABASE_SCHEMA (openStore's schema) ${problem}`, {
      details: { problems: [`DATABASE_SCHEMA ${problem}`] },
    });
  }
  const client = await connectAtStartup(target.connectionString);
  try {
    return await inTransaction(client, work);
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * The configured schema's tables or, failing that, the ones a release before the schema setting
 * made in the connection's default schema (normally `public`). Those stay where they are rather
 * than being moved (ALTER TABLE ... SET SCHEMA): moving them would break the instances of the
 * earlier release still serving during a rolling deploy, a rollback, and whatever else names
 * them there (grants, backups, reports). With no schema configured they are used, with a warning
 * on each start; a configured schema is never silently left for them, nor started empty beside
 * them: that would be a second, empty card directory, so it is refused.
 */
async function locate(client: pg.Client, target: PostgresTarget): Promise<Location> {
  const schema = target.schema ?? DEFAULT_SCHEMA;
  const configured = await find(client, schema);
  if (configured) return configured;
  const name = (await client.query<{ name: string | null }>(SQL.defaultSchema)).rows[0]?.name ?? null;
  const released = name !== null && name !== schema ? await find(client, name) : null;
  if (!released) return { schema, table: null };
  if (target.schema != null) throw releasedTablesElsewhere(schema, released.schema);
  (target.onWarning ?? console.warn)(
    `twilio-e2ee: the store's tables are in schema "${released.schema}", where a release before DATABASE_SCHEMA made them, and stay there. ` +
      `Set DATABASE_SCHEMA=${released.schema} to keep them there without this warning, or move them into "${DEFAULT_SCHEMA}" (docs/API.md, "Database and migrations").`,
  );
  return released;
}

/** The store's tables in `schema`, under either name of the migrations table, or null. */
async function find(client: pg.Client, schema: string): Promise<Location | null> {
  for (const table of [MIGRATIONS_TABLE, RELEASED_MIGRATIONS_TABLE]) {
    const { rows } = await client.query<{ n: number }>(SQL.ours, [schema, table]);
    if (rows[0]?.n === 2) return { schema, table };
  }
  return null;
}

/** The migrations of this release that the tables at `location` lack (all of them where there are none). */
async function pendingAt(client: pg.Client, location: Location): Promise<Migration[]> {
  if (location.table === null) return pendingMigrations([]);
  return pendingMigrations((await client.query(SQL.appliedVersions(location))).rows.map((row) => int(row, 'version')));
}

function configInvalid(problem: string, cause?: unknown): E2EEError {
  return new E2EEError(ErrorCode.CONFIG_INVALID, problem, { cause, details: { problems: [problem] } });
}

function releasedTablesElsewhere(schema: string, released: string): E2EEError {
  return configInvalid(
    `DATABASE_SCHEMA: schema "${schema}" holds no tables of this store, but schema "${released}" holds the ones an earlier release made: ` +
      `set DATABASE_SCHEMA=${released} (or unset it) to keep using them, or move them into "${schema}" (docs/API.md, "Database and migrations")`,
  );
}

function nameTaken(schema: string, err: pg.DatabaseError): E2EEError {
  return configInvalid(
    `DATABASE_SCHEMA: schema "${schema}" already has tables of another application (${err.message}): give this store a schema of its own (default "${DEFAULT_SCHEMA}")`,
    err,
  );
}
