/**
 * The standalone server: `npm start` (or `node dist/server/main.js` after a build). Reads .env,
 * validates the configuration, opens the store, listens, and shuts down gracefully on
 * SIGTERM/SIGINT (in-flight requests finish, then the store closes).
 */
import { config as loadDotenv } from 'dotenv';
import { buildApp } from './app.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { openStore } from './store/index.js';

/** What the operator needs to know at start-up: modes and where keys come from, never the keys. */
function describeMode(config: Config): Record<string, unknown> {
  return {
    mode: config.twilio ? 'twilio' : 'local',
    demoMode: config.demoMode,
    production: config.production,
    appKeyId: config.appKey.appKeyId,
    appKeySource: config.keySource.appKey,
    orgKeySource: config.keySource.orgKey,
    history: config.orgKey ? 'enabled' : 'disabled (no ORG_KEY)',
    auth: `${config.auth.algorithm}, ${config.auth.source}`,
  };
}

async function main(): Promise<void> {
  loadDotenv({ quiet: true });
  let config: Config;
  try {
    config = await loadConfig();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(`twilio-e2ee: ${err.message}`);
    process.exit(1);
  }
  const store = await openStore({ databaseUrl: config.databaseUrl ?? undefined, dataDir: config.dataDir });
  const app = await buildApp({ config, store });

  app.log.info({ ...describeMode(config), store: store.kind }, 'twilio-e2ee configured');
  if (config.keySource.keyFile) {
    app.log.info(`keys ${config.keySource.keyFileCreated ? 'generated into' : 'loaded from'} ${config.keySource.keyFile}`);
  }
  if (config.demoMode) {
    app.log.warn('local demo mode: keys in DATA_DIR, anyone can get a session for any identity; set NODE_ENV=production for real use');
  }

  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) {
      app.log.warn(`${signal} again: exiting now`);
      process.exit(1);
    }
    closing = true;
    app.log.info(`${signal}: closing (in-flight requests finish first)`);
    app
      .close()
      .then(() => store.close())
      .then(
        () => process.exit(0),
        (err: unknown) => {
          app.log.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));

  try {
    await app.listen({ port: config.port, host: config.host });
  } catch (err) {
    app.log.error({ err }, 'cannot listen');
    await store.close();
    process.exit(1);
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const local = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
  app.log.info(`twilio-e2ee listening on http://${local}:${port} (API docs at /docs)${config.publicUrl ? `, public URL ${config.publicUrl}` : ''}`);
}

main().catch((err: unknown) => {
  console.error('twilio-e2ee: failed to start:', err);
  process.exit(1);
});
