/**
 * The plugin in a real host app that already has its own /healthz, @fastify/websocket registered
 * before the plugin and its own `request.identity`, with the plugin mounted under a prefix: it
 * registers, answers every route under the prefix (the URLs it hands out included), leaves the
 * host's routes alone, and a client exchanges a message through it. Then what makes the plugin
 * refuse to start, and what it says when it starts.
 */
import websocket from '@fastify/websocket';
import type { Client, Message } from '@twilio/conversations';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { E2EEClient, MemoryKeyStore } from '../../client/index.js';
import { loadConfig, type Config } from '../../server/config.js';
import { twilioE2ee } from '../../server/index.js';
import { relayTokenSecret } from '../../server/relay-token.js';
import { openStore } from '../../server/store/index.js';
import type { Store } from '../../server/store/types.js';
import { ApiPath } from '../../shared/api.js';
import { E2EEError, ErrorCode, isE2EEError } from '../../shared/errors.js';
import { appKeyFromB64u, toB64u } from '../../shared/index.js';
import { RELAY_LIMITS } from '../../shared/relay-protocol.js';
import { nextEvents, waitFor } from '../support/concurrency.js';
import { demoToken } from '../support/demo-session.js';
import { TEST_APP_KEY, TEST_ORG_KEY } from '../support/env.js';
import { bearer, errorCode, newDevice, proved, testEnv, type TestUser } from '../support/app.js';
import { describeEachStore } from '../support/stores.js';

const PREFIX = '/e2ee';

/** A SQLite store in a fresh directory, removed with the store. */
async function tempStore(): Promise<Store> {
  const dir = mkdtempSync(join(tmpdir(), 'twilio-e2ee-plugin-'));
  const store = await openStore({ dataDir: dir });
  return { ...store, close: async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  } };
}
/** What the host's own onRequest hook puts on every request. */
const HOST_IDENTITY = { user: 'host-user' };
type HostRequest = FastifyRequest & { identity: typeof HOST_IDENTITY | null };

/** A host app with routes of its own, @fastify/websocket, a `request.identity` of its own and a log kept in `lines`. */
async function hostApp(lines: string[] = []): Promise<FastifyInstance> {
  const host = Fastify({ logger: { level: 'info', stream: { write: (line: string) => lines.push(line) } } });
  host.get('/healthz', async () => ({ host: 'alive' }));
  await host.register(websocket, { options: { maxPayload: RELAY_LIMITS.frameBytes } });
  host.get('/host/socket', { websocket: true }, (socket) => {
    socket.on('message', (data) => socket.send(`echo ${String(data)}`));
  });
  host.decorateRequest('identity', null);
  host.addHook('onRequest', async (request) => {
    (request as HostRequest).identity = HOST_IDENTITY;
  });
  host.get('/host/me', async (request) => ({ identity: (request as HostRequest).identity }));
  return host;
}

describeEachStore('plugin under a prefix in a host app', (stores) => {
  let host: FastifyInstance;
  let config: Config;
  let url: string;
  const lines: string[] = [];
  const under = (path: string): string => PREFIX + path;

  beforeAll(async () => {
    config = await loadConfig(testEnv({ DEMO_MODE: 'true' }));
    host = await hostApp(lines);
    await host.register(twilioE2ee, { config, store: await stores().open(), prefix: PREFIX });
    // A host route behind the plugin's authentication, where both decorations meet.
    host.get('/host/both', { preHandler: host.e2ee.authenticate }, async (request) => ({
      host: (request as HostRequest).identity,
      e2ee: request.e2eeIdentity,
    }));
    await host.listen({ host: '127.0.0.1', port: 0 });
    url = `http://127.0.0.1:${(host.server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await host.close();
    await host.e2ee.store.close();
  });

  it('answers its routes under the prefix, and nothing at the unprefixed paths', async () => {
    expect((await host.inject({ method: 'POST', url: ApiPath.session, payload: { identity: 'alice' } })).statusCode).toBe(404);
    const res = await host.inject({ method: 'POST', url: under(ApiPath.session), payload: { identity: 'alice' } });
    expect(res.statusCode).toBe(200);
    const user: TestUser = { identity: 'alice', token: res.json().token, headers: bearer(res.json().token) };

    const device = await newDevice('alice');
    const created = await host.inject({ method: 'POST', url: under(ApiPath.cards), headers: user.headers, payload: device.request });
    expect(created.statusCode).toBe(201);
    const lookup = await host.inject({ url: under(`${ApiPath.cards}?identity=alice`), headers: user.headers });
    expect(lookup.json().cards.alice).toHaveLength(1);
    expect((await host.inject({ url: under(ApiPath.appKey) })).json().publicKey).toBe(toB64u(config.appKey.publicKey));
    expect((await host.inject({ url: under(ApiPath.orgCard) })).statusCode).toBe(200);
    expect(await host.inject({ url: under(ApiPath.readyz) }).then((r) => r.json())).toEqual({ status: 'ready', store: stores().kind });
    expect(await host.inject({ url: under(ApiPath.healthz) }).then((r) => r.json())).toEqual({ status: 'ok' });
    // A device proof signs the path below the prefix, as the client (whose serverUrl has it) signs it.
    const revoke = await proved(user, { keys: device.keys, cardId: created.json().id }, 'DELETE', ApiPath.card(created.json().id));
    const revoked = await host.inject({ ...revoke, url: under(revoke.url as string) });
    expect(revoked.statusCode).toBe(200);
    expect(revoked.json().revokedAt).toEqual(expect.any(Number));

    const unknown = await host.inject({ url: under('/v1/unknown') });
    expect([unknown.statusCode, errorCode(unknown)]).toEqual([404, 'NOT_FOUND']);
    expect((await host.inject({ url: ApiPath.appKey })).statusCode).toBe(404);
  });

  it("keeps the host's own /healthz, websocket route and request.identity", async () => {
    expect((await host.inject({ url: '/healthz' })).json()).toEqual({ host: 'alive' });
    expect((await host.inject({ url: '/host/me' })).json()).toEqual({ identity: HOST_IDENTITY });
    const socket = await host.injectWS('/host/socket');
    const echoed = once(socket, 'message');
    socket.send('hello');
    expect(String((await echoed)[0])).toBe('echo hello');
    socket.terminate();
    // The plugin's authentication leaves the host's decoration as it was, and sets its own.
    const alice = await demoToken({ url: url + PREFIX }, 'alice');
    expect((await fetch(`${url}/host/both`, { headers: bearer(alice) }).then((r) => r.json()))).toEqual({ host: HOST_IDENTITY, e2ee: 'alice' });
  });

  it('hands out the relay URL under the prefix', async () => {
    const token = await demoToken({ url: url + PREFIX }, 'alice');
    const answer = await fetch(url + under(ApiPath.twilioToken), { headers: bearer(token) }).then((r) => r.json());
    expect(answer).toMatchObject({ mode: 'local', relayUrl: `${url.replace('http', 'ws')}${PREFIX}${ApiPath.relay}` });
  });

  it('carries a message between two clients whose serverUrl has the prefix, with a device proof and a history backup', async () => {
    const serverUrl = url + PREFIX;
    const make = async (identity: string, deviceName: string): Promise<E2EEClient> => {
      const token = await demoToken({ url: serverUrl }, identity);
      return E2EEClient.create({ serverUrl, getAuthToken: () => token, appPublicKeys: [toB64u(config.appKey.publicKey)], keyStore: new MemoryKeyStore(), deviceName });
    };
    const [laptop, phone, bob] = [await make('alice', 'laptop'), await make('alice', 'phone'), await make('bob', 'desktop')];
    for (const client of [laptop, phone, bob]) await client.register();
    const chats: Client[] = [];
    try {
      const [laptopChat, bobChat] = [await laptop.connect(), await bob.connect()];
      chats.push(laptopChat, bobChat);
      const conversation = await laptopChat.createConversation({ friendlyName: 'under a prefix' });
      await conversation.join();
      const bobAdded = nextEvents(bobChat, 'conversationAdded');
      await conversation.add('bob');
      await bobAdded;
      const atBob = nextEvents<Message>(bobChat, 'messageAdded');
      await conversation.sendMessage('through /e2ee');
      const [received] = await atBob;
      expect(received!.body).toBe('through /e2ee');
      expect(received!.e2ee).toMatchObject({ status: 'verified', senderCardId: laptop.card!.id });

      const history = async () => {
        const res = await fetch(`${serverUrl}${ApiPath.historyOf(conversation.sid)}?cardId=${laptop.card!.id}`, { headers: bearer(await demoToken({ url: serverUrl }, 'alice')) });
        return (await res.json()) as { messages?: unknown[] };
      };
      await waitFor(async () => ((await history()).messages?.length ?? 0) === 1, 'the backup of the message');

      await phone.revokeDevice(laptop.card!.id); // the phone's device proof, over the path below the prefix
      expect((await phone.cardsOf('alice')).map((card) => card.id)).toEqual([phone.card!.id]);
    } finally {
      for (const chat of chats) await chat.shutdown();
    }
  });

  it('logs one line summarising its configuration', () => {
    const summaries = lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line.msg === 'twilio-e2ee configured');
    expect(summaries).toHaveLength(1);
    expect(summaries[0]).toMatchObject({ mode: 'local', demoMode: true, store: stores().kind, prefix: PREFIX, history: 'enabled', appKeySource: 'APP_KEY' });
  });
});

describe('plugin mounting', () => {
  let store: Store;
  let config: Config;
  beforeAll(async () => {
    config = await loadConfig(testEnv({ DEMO_MODE: 'true' }));
    store = await tempStore();
  });
  afterAll(() => store.close());

  it("adds the prefix of the scope it is registered in to its own, in its routes and the relay URL", async () => {
    const app = Fastify();
    await app.register(async (scope) => scope.register(twilioE2ee, { config, store, prefix: PREFIX }), { prefix: '/chat' });
    try {
      const { token } = (await app.inject({ method: 'POST', url: `/chat${PREFIX}${ApiPath.session}`, payload: { identity: 'alice' } })).json();
      const answer = await app.inject({ url: `/chat${PREFIX}${ApiPath.twilioToken}`, headers: bearer(token) });
      expect(answer.json().relayUrl).toBe(`ws://localhost:80/chat${PREFIX}${ApiPath.relay}`);
    } finally {
      await app.close();
    }
  });

  it('leaves /healthz and /readyz to the app with healthRoutes: false', async () => {
    const app = Fastify();
    app.get('/healthz', async () => ({ host: 'alive' }));
    await expect(app.register(twilioE2ee, { config, store }).ready()).rejects.toThrow(/healthz/); // the duplicate route
    const withoutProbes = Fastify();
    withoutProbes.get('/healthz', async () => ({ host: 'alive' }));
    await withoutProbes.register(twilioE2ee, { config, store, healthRoutes: false });
    try {
      expect((await withoutProbes.inject({ url: ApiPath.healthz })).json()).toEqual({ host: 'alive' });
      expect((await withoutProbes.inject({ url: ApiPath.readyz })).statusCode).toBe(404);
      expect((await withoutProbes.inject({ url: ApiPath.appKey })).statusCode).toBe(200);
    } finally {
      await withoutProbes.close();
    }
  });

  it.each(['e2ee', '/e2ee/', '/e2ee?x', '/:id', 7])('refuses the prefix %j before decorating anything', async (prefix) => {
    const app = Fastify();
    await expect(app.register(twilioE2ee, { config, store, prefix } as never).ready()).rejects.toThrow(/options\.prefix must be a path like "\/e2ee"/);
    expect(app.hasDecorator('e2ee')).toBe(false);
  });

  it("refuses, in local mode, an app's @fastify/websocket that lets frames above the relay's limit through", async () => {
    const app = Fastify();
    await app.register(websocket); // ws's default: 100 MiB frames
    const failure = await app.register(twilioE2ee, { config, store }).ready().then(() => null, (err: unknown) => err);
    expect(isE2EEError(failure, ErrorCode.CONFIG_INVALID)).toBe(true);
    expect((failure as E2EEError).message).toContain(`options.maxPayload at most ${RELAY_LIMITS.frameBytes}`);
    await app.close();
  });
});

describe('demo mode only when asked for', () => {
  let store: Store;
  beforeAll(async () => {
    store = await tempStore();
  });
  afterAll(() => store.close());

  it('refuses a configuration that fell back to demo mode (no auth setting, DEMO_MODE unset)', async () => {
    const config = await loadConfig(testEnv());
    expect([config.demoMode, config.demoModeDefaulted]).toEqual([true, true]);
    const app = Fastify();
    const failure = await app.register(twilioE2ee, { config, store }).ready().then(() => null, (err: unknown) => err);
    expect(isE2EEError(failure, ErrorCode.CONFIG_INVALID)).toBe(true);
    expect((failure as E2EEError).message).toMatch(/no AUTH_JWT_SECRET or AUTH_JWT_PUBLIC_KEY is set.*DEMO_MODE=true or the plugin option demoMode: true/);
    expect(app.hasDecorator('e2ee')).toBe(false);
  });

  it.each([
    ['DEMO_MODE=true', { DEMO_MODE: 'true' }, {}],
    ['the demoMode option', {}, { demoMode: true }],
  ])('runs the demo when asked with %s', async (_name, env, options) => {
    const app = Fastify();
    await app.register(twilioE2ee, { config: await loadConfig(testEnv(env)), store, ...options });
    try {
      expect((await app.inject({ method: 'POST', url: ApiPath.session, payload: { identity: 'alice' } })).statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });

  it('starts with an auth setting, without demo mode', async () => {
    const app = Fastify();
    await app.register(twilioE2ee, { config: await loadConfig(testEnv({ AUTH_JWT_SECRET: 'a'.repeat(40) })), store });
    try {
      expect((await app.inject({ method: 'POST', url: ApiPath.session, payload: { identity: 'alice' } })).statusCode).toBe(404);
    } finally {
      await app.close();
    }
  });
});

describe('the start-up summary', () => {
  it('names mode, store, key sources, Twilio and history, and holds no key or secret', async () => {
    const secrets = {
      AUTH_JWT_SECRET: 'the-identity-providers-secret-0123456789',
      TWILIO_API_SECRET: 'twilio-api-secret-for-the-summary',
      TWILIO_AUTH_TOKEN: 'twilio-auth-token-for-the-summary',
    };
    const config = await loadConfig(
      testEnv({
        ...secrets,
        TWILIO_ACCOUNT_SID: `AC${'1'.repeat(32)}`,
        TWILIO_API_KEY: `SK${'2'.repeat(32)}`,
        TWILIO_CONVERSATIONS_SERVICE_SID: `IS${'3'.repeat(32)}`,
        PUBLIC_URL: 'https://chat.example.com',
      }),
    );
    const lines: string[] = [];
    const app = Fastify({ logger: { level: 'trace', stream: { write: (line: string) => lines.push(line) } } });
    const store = await tempStore();
    try {
      await app.register(twilioE2ee, { config, store, prefix: PREFIX });
      await app.ready();
      const summaries = lines.filter((line) => line.includes('"msg":"twilio-e2ee configured"'));
      expect(summaries).toHaveLength(1);
      expect(JSON.parse(summaries[0]!)).toMatchObject({
        level: 30,
        mode: 'twilio',
        demoMode: false,
        store: 'sqlite',
        prefix: PREFIX,
        appKeySource: 'APP_KEY',
        orgKeySource: 'ORG_KEY',
        history: 'enabled',
        auth: 'HS256, AUTH_JWT_SECRET',
      });
      const appKey = appKeyFromB64u(TEST_APP_KEY);
      const kept = [...Object.values(secrets), TEST_APP_KEY, TEST_ORG_KEY, toB64u(appKey.secretKey), Buffer.from(relayTokenSecret(appKey)).toString('hex')];
      const output = lines.join('\n');
      expect(kept.filter((secret) => output.includes(secret))).toEqual([]);
    } finally {
      await app.close();
      await store.close();
    }
  });
});

describe('start-up connection errors', () => {
  it('names DATABASE_URL and the host:port tried when PostgreSQL is not there, never the password', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise((resolve) => closed.close(resolve));

    const failure = await openStore({ databaseUrl: `postgres://e2ee:the-db-password@127.0.0.1:${port}/e2ee` }).then(() => null, (err: unknown) => err);
    expect(isE2EEError(failure, ErrorCode.STORE_UNAVAILABLE)).toBe(true);
    const { message } = failure as E2EEError;
    expect(message).toContain('DATABASE_URL');
    expect(message).toContain(`127.0.0.1:${port}/e2ee`);
    expect(message).toContain('ECONNREFUSED');
    expect(message).not.toContain('the-db-password');
  });
});
