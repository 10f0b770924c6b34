/**
 * `npm run rewrap-history` (or `node dist/server/rewrap-history-main.js`): reads .env and the
 * environment as the server does (ORG_KEY, ORG_KEY_PREVIOUS, DATABASE_URL and DATABASE_SCHEMA or DATA_DIR), then moves
 * every history copy to ORG_KEY (server/rewrap-history.ts). Ctrl-C (or SIGTERM) stops it after the
 * batch in progress; running it again goes on from there.
 */
import { config as loadDotenv } from 'dotenv';
import { isE2EEError, ErrorCode } from '../shared/errors.js';
import { loadConfig } from './config.js';
import { rewrapHistoryCommand } from './rewrap-history.js';
import { openStore } from './store/index.js';

async function main(): Promise<number> {
  loadDotenv({ quiet: true });
  let config;
  try {
    config = await loadConfig();
  } catch (err) {
    if (!isE2EEError(err, ErrorCode.CONFIG_INVALID)) throw err;
    console.error(`rewrap-history: ${err.message}`);
    return 1;
  }
  let store;
  try {
    store = await openStore({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, schema: config.databaseSchema });
  } catch (err) {
    // The store's own message names the setting and what was tried (never a password).
    console.error(`rewrap-history: cannot open the store: ${(err as Error).message}`);
    return 1;
  }
  const stop = new AbortController();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => stop.abort());
  try {
    return await rewrapHistoryCommand(config, store, (line) => console.log(line), { signal: stop.signal });
  } finally {
    await store.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error('rewrap-history: failed:', err);
    process.exit(1);
  },
);
