/**
 * TRUST_PROXY (the security review's finding 12): X-Forwarded-For decides the client address (and so the session rate
 * limit's budget) only when it comes from a listed proxy, or for the configured number of hops.
 * A client that sends its own X-Forwarded-For is counted against its real address.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../server/app.js';
import { loadConfig } from '../../server/config.js';
import { openStore } from '../../server/store/index.js';
import { ApiPath } from '../../shared/api.js';
import { errorCode, testEnv, uid } from '../support/app.js';
import { historyServer, type HistoryServer } from '../support/history.js';

const PROXY = '10.0.0.1';
const SESSIONS_PER_MINUTE = 2;

let server: HistoryServer | null = null;
afterEach(async () => {
  await server?.close();
  server = null;
});

/** Demo sessions from `remoteAddress` carrying `forwardedFor`; the status codes in order. */
async function sessions(app: FastifyInstance, remoteAddress: string, forwardedFor: (i: number) => string, count = SESSIONS_PER_MINUTE + 1): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < count; i++) {
    const res = await app.inject({ method: 'POST', url: ApiPath.session, remoteAddress, headers: { 'x-forwarded-for': forwardedFor(i) }, payload: { identity: uid('user') } });
    if (res.statusCode === 429) expect(errorCode(res)).toBe('RATE_LIMITED');
    statuses.push(res.statusCode);
  }
  return statuses;
}

describe('with a list of proxies', () => {
  it('counts a client that spoofs X-Forwarded-For against its real address', async () => {
    server = await historyServer({ TRUST_PROXY: PROXY, RATE_LIMIT_SESSION: String(SESSIONS_PER_MINUTE) });
    expect(await sessions(server.app, '198.51.100.20', (i) => `203.0.113.${i}`)).toEqual([200, 200, 429]);
  });

  it('counts the clients a listed proxy forwards separately, each against its own budget', async () => {
    server = await historyServer({ TRUST_PROXY: `${PROXY},192.168.0.0/16`, RATE_LIMIT_SESSION: String(SESSIONS_PER_MINUTE) });
    expect(await sessions(server.app, PROXY, (i) => `203.0.113.${i}`)).toEqual([200, 200, 200]);
    expect(await sessions(server.app, '192.168.4.4', () => '203.0.113.99')).toEqual([200, 200, 429]);
  });
});

describe('with a hop count', () => {
  it('takes the address the last proxy saw, ignoring entries the client wrote before it', async () => {
    server = await historyServer({ TRUST_PROXY: '1', RATE_LIMIT_SESSION: String(SESSIONS_PER_MINUTE) });
    // The client wrote "203.0.113.<i>"; the one proxy appended the address it saw, 198.51.100.7.
    expect(await sessions(server.app, PROXY, (i) => `203.0.113.${i}, 198.51.100.7`)).toEqual([200, 200, 429]);
  });
});

describe('TRUST_PROXY=true (demo mode only)', () => {
  it('logs a warning at start-up', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'e2ee-trust-proxy-'));
    const lines: string[] = [];
    const config = await loadConfig(testEnv({ DATA_DIR: dataDir, TRUST_PROXY: 'true' }));
    const store = await openStore({ dataDir });
    const app = await buildApp({ config, store, logger: { level: 'warn', stream: { write: (line: string) => lines.push(line) } } });
    try {
      await app.ready();
      const warnings = lines.map((line) => JSON.parse(line) as { level: number; msg: string }).filter((l) => l.level === 40);
      expect(warnings.map((w) => w.msg)).toContainEqual(expect.stringMatching(/^TRUST_PROXY=true: client addresses .* come from X-Forwarded-For/));
    } finally {
      await app.close();
      await store.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
