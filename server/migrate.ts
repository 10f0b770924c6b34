/**
 * `node dist/server/migrate.js` (or `npx tsx server/migrate.ts`): brings the store's tables up to
 * date and exits, e.g. as a deploy step before new instances start (docs/API.md, "Database and
 * migrations"). Reads .env and only DATA_DIR, DATABASE_URL and DATABASE_SCHEMA: it needs no key.
 */
import { config as loadDotenv } from 'dotenv';
import { EnvReader, loadStorage } from './config-env.js';
import { migrateStore } from './store/index.js';

loadDotenv({ quiet: true });
const r = new EnvReader(process.env);
const { dataDir, databaseUrl, databaseSchema } = loadStorage(r);
if (r.problems.length > 0) {
  console.error(`twilio-e2ee migrate: invalid configuration:\n  - ${r.problems.join('\n  - ')}`);
  process.exit(1);
}
try {
  const report = await migrateStore({ databaseUrl, dataDir, schema: databaseSchema });
  const where = report.kind === 'postgres' ? `PostgreSQL schema "${report.schema}"` : `SQLite in ${dataDir}`;
  console.log(`twilio-e2ee migrate: ${where}: ${report.applied.length > 0 ? `applied ${report.applied.join(', ')}` : 'up to date'}`);
} catch (err) {
  console.error(`twilio-e2ee migrate: ${(err as Error).message}`);
  process.exit(1);
}
