/**
 * The standalone server as a process: `PORT=<p> DATA_DIR=<dir> npm start` serves every route,
 * .env is read, configuration errors stop it with a message naming the variable, and SIGTERM
 * shuts it down gracefully.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ApiPath } from '../../shared/api.js';
import { toB64u, trustAppKeys, verifyCard } from '../../shared/index.js';
import { newDevice } from '../support/app.js';
import { runToExit, startServerProcess } from '../support/server-process.js';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'twilio-e2ee-main-'));
  dirs.push(dir);
  return dir;
}
afterAll(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

async function json<T = Record<string, unknown>>(res: Response): Promise<T> {
  return (await res.json()) as T;
}

// Each test starts real server processes: generous timeouts for loaded CI machines.
const PROCESS_TEST = { timeout: 120_000 };

describe('npm start', PROCESS_TEST, () => {
  it('serves sessions, tokens, cards, app key, org card, health and docs in local demo mode', async () => {
    const port = String(20_000 + Math.floor(Math.random() * 20_000));
    const server = await startServerProcess({ env: { PORT: port, DATA_DIR: tempDir() }, npmStart: true });
    try {
      expect(server.url).toBe(`http://127.0.0.1:${port}`);
      expect(server.output()).toContain('DEMO MODE');
      // One summary line of the configuration, from the plugin.
      expect(server.output().match(/"msg":"twilio-e2ee configured"/g)).toHaveLength(1);
      const get = (path: string, headers: Record<string, string> = {}) => fetch(server.url + path, { headers });

      const { token } = await json<{ token: string }>(
        await fetch(server.url + ApiPath.session, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"identity":"alice"}' }),
      );
      const auth = { authorization: `Bearer ${token}` };
      expect(await json(await get(ApiPath.twilioToken, auth))).toMatchObject({ mode: 'local', identity: 'alice', relayUrl: `ws://127.0.0.1:${port}/v1/relay` });

      const device = await newDevice('alice');
      const created = await fetch(server.url + ApiPath.cards, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify(device.request),
      });
      expect(created.status).toBe(201);
      const appKey = await json<{ publicKey: string }>(await get(ApiPath.appKey));
      const trusted = trustAppKeys([appKey.publicKey]);
      verifyCard(await created.json(), { trustedAppKeys: trusted, identity: 'alice' });
      verifyCard(await (await get(ApiPath.orgCard)).json(), { trustedAppKeys: trusted, identity: 'org:default' });

      expect(await json(await get(ApiPath.healthz))).toEqual({ status: 'ok' });
      expect(await json(await get(ApiPath.readyz))).toEqual({ status: 'ready', store: 'sqlite' });
      expect((await get('/docs/json')).status).toBe(200);
      expect((await get('/docs/')).status).toBe(200);
    } finally {
      await server.stop();
    }
  });
});

describe('the standalone server', PROCESS_TEST, () => {
  it('reads .env from its working directory and keeps its generated keys across restarts', async () => {
    const cwd = tempDir();
    writeFileSync(join(cwd, '.env'), 'ORG_NAME=from-dotenv\nLOG_LEVEL=info\n');
    const first = await startServerProcess({ env: {}, cwd });
    const appKey = await (await fetch(first.url + ApiPath.appKey)).json();
    const orgCard = await (await fetch(first.url + ApiPath.orgCard)).json();
    expect(first.output()).toContain(`keys generated into ${join(cwd, '.data', 'keys.json')}`);
    await first.stop();

    const second = await startServerProcess({ env: {}, cwd });
    try {
      expect(second.output()).toContain('keys loaded from');
      expect(await (await fetch(second.url + ApiPath.appKey)).json()).toEqual(appKey);
      expect(await (await fetch(second.url + ApiPath.orgCard)).json()).toEqual(orgCard);
      const card = verifyCard(orgCard, { trustedAppKeys: trustAppKeys([(appKey as { publicKey: string }).publicKey]) });
      expect(card.identity).toBe('org:from-dotenv');
    } finally {
      await second.stop();
    }
  });

  it('shuts down gracefully on SIGTERM (exit 0, store closed)', async () => {
    const server = await startServerProcess({ env: { DATA_DIR: tempDir() } });
    expect((await fetch(server.url + ApiPath.healthz)).status).toBe(200);
    expect(await server.stop('SIGTERM')).toBe(0);
    expect(server.output()).toContain('SIGTERM: closing');
    expect(server.output()).toMatch(/"msg":"closed"/);
    await expect(fetch(server.url + ApiPath.healthz)).rejects.toThrow();
  });

  it('stops at start-up with a message naming the variable', async () => {
    const bad = await runToExit({ env: { PORT: 'eighty', DATA_DIR: tempDir() } });
    expect(bad.code).toBe(1);
    expect(bad.output).toContain('PORT must be an integer from 0 to 65535, got "eighty"');

    const production = await runToExit({ env: { NODE_ENV: 'production', DATA_DIR: tempDir() } });
    expect(production.code).toBe(1);
    expect(production.output).toContain('APP_KEY is required when NODE_ENV=production');
    expect(production.output).toContain('AUTH_JWT_SECRET or AUTH_JWT_PUBLIC_KEY is required');
  });

  it('stops when the database or the port is not there, naming the setting and what it tried', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const { port } = taken.address() as AddressInfo;
    const env = { DATA_DIR: tempDir(), SERVE_DEMO: 'false', HOST: '127.0.0.1' };
    try {
      const listen = await runToExit({ env: { ...env, PORT: String(port) } });
      expect(listen.code).toBe(1);
      expect(listen.output).toContain(`cannot listen on 127.0.0.1:${port} (HOST, PORT): EADDRINUSE`);
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
    // Now nothing listens there: PostgreSQL's connection is refused.
    const database = await runToExit({ env: { ...env, DATABASE_URL: `postgres://e2ee:db-password@127.0.0.1:${port}/e2ee` } });
    expect(database.code).toBe(1);
    expect(database.output).toContain(`twilio-e2ee: cannot open the store: cannot connect to PostgreSQL at 127.0.0.1:${port}/e2ee (DATABASE_URL`);
    expect(database.output).toContain('ECONNREFUSED');
    expect(database.output).not.toContain('db-password');
    // A DATA_DIR that cannot be a directory (under a file): the SQLite file cannot be opened.
    const file = join(tempDir(), 'a-file');
    writeFileSync(file, '');
    const sqlite = await runToExit({ env: { ...env, DATA_DIR: join(file, 'data') } });
    expect(sqlite.code).toBe(1);
    expect(sqlite.output).toContain(`DATA_DIR is invalid: ENOTDIR: not a directory, mkdir '${join(file, 'data')}'`);
  });

  it('starts in production mode with explicit keys and an identity provider key', async () => {
    const server = await startServerProcess({
      env: { NODE_ENV: 'production', APP_KEY: toB64u(new Uint8Array(32).fill(7)), LOG_KEY: toB64u(new Uint8Array(32).fill(8)), AUTH_JWT_SECRET: 'p'.repeat(40), DATA_DIR: tempDir() },
    });
    try {
      expect(server.output()).not.toContain('DEMO MODE');
      const session = await fetch(server.url + ApiPath.session, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"identity":"a"}' });
      expect(session.status).toBe(404);
      expect((await fetch(server.url + ApiPath.orgCard)).status).toBe(503); // HISTORY_DISABLED
    } finally {
      await server.stop();
    }
  });
});
