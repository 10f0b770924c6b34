/**
 * twilio-e2ee/server: the Fastify plugin for teams with their own server, the complete app, the
 * configuration loader and the stores.
 *
 *   import Fastify from 'fastify';
 *   import { twilioE2ee, loadConfig, openStore } from 'twilio-e2ee/server';
 *   const config = await loadConfig();
 *   const store = await openStore({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, schema: config.databaseSchema });
 *   await app.register(twilioE2ee, { config, store });
 */
export {
  twilioE2ee,
  twilioE2ee as default,
  type CanReadHistory,
  type E2eeContext,
  type HistoryReader,
  type TwilioE2eeOptions,
} from './plugin.js';
export { buildApp, DOCS_PATH, serverOptions, timeoutOptions, type BuildAppOptions } from './app.js';
export {
  loadConfig,
  loadOrCreateKeyFile,
  type AuthConfig,
  type Config,
  type JwtAlgorithm,
  type RateLimitConfig,
  type TwilioConfig,
} from './config.js';
export { E2EEError, ErrorCode, errorStatus, isE2EEError } from '../shared/errors.js';
export { relayTokenSecret, relayUrl, signRelayToken, verifyRelayToken, RELAY_TOKEN_AUDIENCE } from './relay-token.js';
export { migrateStore, openStore, type MigrationReport, type OpenStoreOptions } from './store/index.js';
export { orgKeyIdOf } from './org-key-ring.js';
export {
  DEFAULT_REWRAP_BATCH,
  rewrapHistory,
  rewrapHistoryCommand,
  type RewrapHistoryOptions,
  type RewrapHistoryResult,
  type RewrapProgress,
} from './rewrap-history.js';
export type * from './store/types.js';
