/**
 * The plugin mounted in a team's own Fastify app, which already has @fastify/jwt, an
 * `authenticate` decorator, its own error and 404 handlers and a larger body limit: both sides
 * keep working, and the plugin's behaviour stays on its own routes.
 */
import fastifyJwt from '@fastify/jwt';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import { loadConfig, type Config } from '../../server/config.js';
import { twilioE2ee, type E2eeContext } from '../../server/index.js';
import { ApiPath } from '../../shared/api.js';
import { bearer, errorCode, newDevice, postCard, session, testEnv } from '../support/app.js';
import { describeEachStore } from '../support/stores.js';

const HOST_SECRET = 'the-host-apps-own-jwt-secret-0123456789';

describeEachStore('plugin in a host app', (stores) => {
  let host: FastifyInstance;
  let config: Config;

  beforeAll(async () => {
    config = await loadConfig(testEnv({ BODY_LIMIT: '4096', DEMO_MODE: 'true' }));
    host = Fastify({ bodyLimit: 1024 * 1024 });
    await host.register(fastifyJwt, { secret: HOST_SECRET });
    host.decorate('authenticate', async (request: FastifyRequest) => {
      await request.jwtVerify();
    });
    host.setErrorHandler((err: Error, _request: FastifyRequest, reply: FastifyReply) => reply.code(418).send({ host: err.message }));
    host.setNotFoundHandler((_request, reply) => reply.code(404).send({ host: 'not found' }));
    host.get('/me', { preHandler: (host as unknown as { authenticate: () => Promise<void> }).authenticate }, async (request) => ({ user: request.user }));
    host.post('/echo', async (request) => request.body);

    await host.register(twilioE2ee, { config, store: await stores().open() });
    // A host route protected by the plugin's authentication.
    host.get('/whoami', { preHandler: host.e2ee.authenticate }, async (request) => ({ identity: request.e2eeIdentity }));
    await host.ready();
  });
  afterAll(() => host.close());

  it("serves the plugin's routes with the plugin's error shape", async () => {
    const alice = await session(host);
    expect((await postCard(host, alice, (await newDevice(alice.identity)).request)).statusCode).toBe(201);
    const bad = await host.inject({ method: 'POST', url: ApiPath.cards, headers: alice.headers, payload: { snapshot: 'x' } });
    expect(bad.statusCode).toBe(400);
    expect(errorCode(bad)).toBe('BAD_REQUEST');
    const unknown = await host.inject({ url: '/v1/unknown' });
    expect(unknown.statusCode).toBe(404);
    expect(errorCode(unknown)).toBe('NOT_FOUND');
  });

  it("keeps the host's own @fastify/jwt, error handler and 404 handler for the host's routes", async () => {
    const token = host.jwt.sign({ name: 'host user' });
    const me = await host.inject({ url: '/me', headers: bearer(token) });
    expect(me.statusCode).toBe(200);
    expect(me.json().user.name).toBe('host user');
    expect((await host.inject({ url: '/me' })).statusCode).toBe(418);
    expect((await host.inject({ url: '/elsewhere' })).json()).toEqual({ host: 'not found' });
    // The plugin's app tokens are not the host's, and the reverse.
    const alice = await session(host);
    expect((await host.inject({ url: '/me', headers: alice.headers })).statusCode).toBe(418);
    expect((await host.inject({ url: ApiPath.twilioToken, headers: bearer(token) })).statusCode).toBe(401);
  });

  it("lets host routes use the plugin's authenticate and request.e2eeIdentity", async () => {
    const alice = await session(host);
    expect((await host.inject({ url: '/whoami', headers: alice.headers })).json()).toEqual({ identity: alice.identity });
  });

  it("applies BODY_LIMIT to the plugin's routes only", async () => {
    const big = JSON.stringify({ identity: 'x'.repeat(6000) });
    const headers = { 'content-type': 'application/json' };
    expect((await host.inject({ method: 'POST', url: ApiPath.session, payload: big, headers })).statusCode).toBe(413);
    expect((await host.inject({ method: 'POST', url: '/echo', payload: big, headers })).statusCode).toBe(200);
  });

  it('types the decorations', () => {
    expectTypeOf(host.e2ee).toEqualTypeOf<E2eeContext>();
    expectTypeOf(host.e2ee.config.tokenTtl).toEqualTypeOf<number>();
    expectTypeOf<FastifyRequest['e2eeIdentity']>().toEqualTypeOf<string>();
  });
});

describe('plugin options', () => {
  it.each([
    ['no options', undefined, /options\.config is required/],
    ['a config that is not one', { config: { port: 1 }, store: {} }, /options\.config is not a Config/],
  ])('rejects %s before decorating anything', async (_name, options, message) => {
    const app = Fastify();
    await expect(app.register(twilioE2ee, options as never).ready()).rejects.toThrow(message);
    expect(app.hasDecorator('e2ee')).toBe(false);
  });

  it('names the Store methods a store lacks', async () => {
    const config = await loadConfig(testEnv({ DEMO_MODE: 'true' }));
    const app = Fastify();
    await expect(app.register(twilioE2ee, { config, store: { ping() {} } as never }).ready()).rejects.toThrow(
      /options\.store does not implement Store \(missing close, getSetting/,
    );
  });
});
