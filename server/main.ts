/**
 * The standalone server: `npm start` (or `node dist/server/main.js` after a build). Reads .env,
 * validates the configuration, opens the store, listens, and shuts down gracefully on
 * SIGTERM/SIGINT (in-flight requests finish, then the store closes).
 */
import { config as loadDotenv } from 'dotenv';
import { buildApp } from './app.js';
import { isE2EEError, ErrorCode } from '../shared/errors.js';
import { loadConfig, type Config } from './config.js';
import { prepareDemo, type DemoOptions } from './demo.js';
import { openStore, type Store } from './store/index.js';

/** Longest wait for in-flight requests at shutdown (orchestrators SIGKILL after ~30 s anyway). */
const SHUTDOWN_TIMEOUT_MS = 10_000;

async function main(): Promise<void> {
  loadDotenv({ quiet: true });
  let config: Config;
  try {
    config = await loadConfig();
  } catch (err) {
    if (!isE2EEError(err, ErrorCode.CONFIG_INVALID)) throw err;
    console.error(`twilio-e2ee: ${err.message}`);
    process.exit(1);
  }
  // The demo web client (server/demo.ts): served at "/" in demo mode (or SERVE_DEMO=true),
  // built with Vite first when missing or older than its sources.
  const demoLog: Array<['info' | 'warn', string]> = [];
  let demo: DemoOptions | null;
  try {
    demo = await prepareDemo(process.env, config.demoMode, { info: (m) => demoLog.push(['info', m]), warn: (m) => demoLog.push(['warn', m]) });
  } catch (err) {
    console.error(`twilio-e2ee: demo web client: ${(err as Error).message} (SERVE_DEMO=false serves the API only)`);
    process.exit(1);
  }
  let store: Store;
  try {
    store = await openStore({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, schema: config.databaseSchema });
  } catch (err) {
    // The store's own message names the setting and what was tried (never a password).
    console.error(`twilio-e2ee: cannot open the store: ${(err as Error).message}`);
    process.exit(1);
  }
  // The plugin logs the configuration summary ("twilio-e2ee configured").
  const app = await buildApp({ config, store, ...(demo ? { demo } : {}) });
  for (const [level, message] of demoLog) app.log[level](message);
  if (config.keySource.keyFile) {
    app.log.info(`keys ${config.keySource.keyFileCreated ? 'generated into' : 'loaded from'} ${config.keySource.keyFile}`);
  }

  // A process group gets a signal more than once (e.g. Ctrl-C reaches tsx and the server), so
  // repeats are ignored; a timer bounds the wait for slow in-flight requests instead.
  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    app.log.info(`${signal}: closing (in-flight requests finish first)`);
    setTimeout(() => {
      app.log.error(`still closing after ${SHUTDOWN_TIMEOUT_MS / 1000} s: exiting`);
      process.exit(1);
    }, SHUTDOWN_TIMEOUT_MS).unref();
    app
      .close()
      .then(() => store.close())
      .then(
        () => {
          app.log.info('closed');
          process.exit(0);
        },
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
    app.log.error({ err }, `cannot listen on ${config.host}:${config.port} (HOST, PORT): ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    await store.close();
    process.exit(1);
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const local = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
  app.log.info(`twilio-e2ee listening on http://${local}:${port} (API docs at /docs)${config.publicUrl ? `, public URL ${config.publicUrl}` : ''}`);
  if (demo) {
    const url = config.publicUrl ?? `http://${local}:${port}`;
    app.log.info(`demo web client: open ${url}`);
    if (process.stdout.isTTY) console.log(`\n  ➜  Open ${url} for the demo web client\n`);
  }
}

main().catch((err: unknown) => {
  console.error('twilio-e2ee: failed to start:', err);
  process.exit(1);
});
