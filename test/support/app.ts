/**
 * Real server instances for the tests: the real config loader, plugin, store and crypto (no
 * mocks of our own code). Requests go through app.inject.
 */
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { buildApp } from '../../server/app.js';
import { loadConfig, type Config } from '../../server/config.js';
import type { LoggerSettings } from '../../server/logging.js';
import type { Store } from '../../server/store/types.js';
import { ApiPath } from '../../shared/api.js';
import { createCardRequest, generateDeviceKeys, ready, type CardRequest, type DeviceKeys, type NewCardFields } from '../../shared/index.js';
import { DEVICE_PROOF_HEADER, signDeviceProof } from '../../shared/device-proof.js';
import { sign } from '../../shared/sodium.js';
import { RATE_LIMITS_OFF, TEST_APP_KEY, TEST_LOG_KEY, TEST_ORG_KEY } from './env.js';
import type { TestStores } from './stores.js';

/**
 * The base environment: demo mode (no auth settings), explicit keys (so no key file), rate limits
 * off (the rate limit tests turn them on), and a private data directory.
 */
export function testEnv(overrides: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return {
    DATA_DIR: join(tmpdir(), `twilio-e2ee-unused-${randomUUID()}`), // never written: the keys are explicit
    APP_KEY: TEST_APP_KEY,
    ORG_KEY: TEST_ORG_KEY,
    LOG_KEY: TEST_LOG_KEY,
    ...RATE_LIMITS_OFF,
    ...overrides,
  };
}

/** A ready app (requests through app.inject) with its configuration and store. */
export interface ServerApp {
  app: FastifyInstance;
  config: Config;
  store: Store;
}

export interface TestAppOptions {
  env?: Record<string, string | undefined>;
  /** Capture the logs (else no logging). */
  log?: Partial<LoggerSettings>;
}

/** A ready app on a new connection to the suite's store. Close it with `app.close()`. */
export async function testApp(stores: TestStores, options: TestAppOptions = {}): Promise<ServerApp> {
  const config = await loadConfig(testEnv(options.env));
  const store = await stores.open();
  const app = await buildApp({ config, store, logger: options.log ?? false });
  await app.ready();
  return { app, config, store };
}

export const uid = (prefix: string): string => `${prefix}-${randomUUID().slice(0, 8)}`;

export function bearer(token: string): { authorization: string } {
  return { authorization: `Bearer ${token}` };
}

export interface TestUser {
  identity: string;
  token: string;
  headers: { authorization: string };
}

/** A demo-mode session for a fresh (or given) identity, through POST /v1/session. */
export async function session(app: FastifyInstance, identity = uid('user')): Promise<TestUser> {
  const res = await app.inject({ method: 'POST', url: ApiPath.session, payload: { identity } });
  if (res.statusCode !== 200) throw new Error(`session failed: ${res.statusCode} ${res.body}`);
  const { token } = res.json<{ token: string }>();
  return { identity, token, headers: bearer(token) };
}

/** A new device's keys and the request that registers its card. */
export interface DeviceRegistration {
  keys: DeviceKeys;
  request: CardRequest;
}

/** A new device of `identity` and its registration request, made by the shared core. */
export async function newDevice(identity: string, fields: Partial<NewCardFields> = {}): Promise<DeviceRegistration> {
  await ready();
  const keys = generateDeviceKeys();
  return { keys, request: createCardRequest(keys, { identity, deviceId: uid('device'), deviceName: 'test device', ...fields }) };
}

/** A registered device: its keys and the id of its card, what a device proof needs. */
export interface ProvingDevice {
  keys: DeviceKeys;
  cardId: string;
}

/**
 * A request of `user` carrying `device`'s X-E2EE-Device proof (made by the shared core, as the
 * client makes it). `timestamp` (unix seconds) defaults to now.
 */
export async function proved(
  user: TestUser,
  device: ProvingDevice,
  method: 'GET' | 'POST' | 'DELETE',
  url: string,
  body?: unknown,
  timestamp?: number,
): Promise<InjectOptions> {
  const text = body === undefined ? undefined : JSON.stringify(body);
  const proof = await signDeviceProof((m) => sign(m, device.keys.signSecretKey), device.cardId, {
    method,
    path: url,
    ...(text === undefined ? {} : { body: new TextEncoder().encode(text) }),
  }, timestamp);
  return {
    method,
    url,
    headers: { ...user.headers, [DEVICE_PROOF_HEADER]: proof, ...(text === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(text === undefined ? {} : { payload: text }),
  };
}

/** POST /v1/cards; with `approver`, carrying its device proof (needed once the identity has a device). */
export async function postCard(app: FastifyInstance, user: TestUser, request: CardRequest, approver?: ProvingDevice): Promise<LightMyRequestResponse> {
  if (approver) return app.inject(await proved(user, approver, 'POST', ApiPath.cards, request));
  return app.inject({ method: 'POST', url: ApiPath.cards, headers: user.headers, payload: request });
}

/** DELETE /v1/cards/:id with the device proof of `by` (an active device of the user). */
export async function revokeCard(app: FastifyInstance, user: TestUser, cardId: string, by: ProvingDevice): Promise<LightMyRequestResponse> {
  return app.inject(await proved(user, by, 'DELETE', ApiPath.card(cardId)));
}

/** Asserts the `{"error": {"code", "message"}}` shape and returns the code. */
export function errorCode(res: LightMyRequestResponse): string {
  const body = res.json<{ error?: { code?: unknown; message?: unknown } }>();
  if (typeof body.error?.code !== 'string' || typeof body.error.message !== 'string') {
    throw new Error(`not an error body: ${res.statusCode} ${res.body}`);
  }
  return body.error.code;
}
