/**
 * Scans all log output of full runs of the standalone server (LOG_LEVEL=trace, demo and Twilio
 * modes, successes and failures, shutdown) for what must never be logged: tokens, Authorization
 * headers, key seeds and secrets, request bodies. Also checks every request line has an id.
 */
import { once } from 'node:events';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import WebSocket from 'ws';
import { DEMO_SESSION_SECRET_LABEL, deriveAppSecret } from '../../server/secrets.js';
import { relayTokenSecret } from '../../server/relay-token.js';
import { ApiPath } from '../../shared/api.js';
import { DEVICE_PROOF_HEADER, signDeviceProof } from '../../shared/device-proof.js';
import { appKeyFromB64u, toB64u } from '../../shared/index.js';
import { sign } from '../../shared/sodium.js';
import { newDevice } from '../support/app.js';
import { startServerProcess, type ServerProcess } from '../support/server-process.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

/** Everything secret the run produced or used; none of it may appear in the output. */
const secrets = new Set<string>();
function secret(value: string): string {
  secrets.add(value);
  return value;
}

async function call(server: ServerProcess, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Response> {
  if (headers.authorization) secret(headers.authorization);
  return fetch(server.url + path, { method, headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers }, body });
}

type RelayAnswer = { id: number; ok: boolean; result?: { sid?: string } };

/** Talks to the local relay: authenticates with `token`, then runs `ops` (each answered before the next). */
async function relay(url: string, token: string, ops: [string, (answers: RelayAnswer[]) => unknown][]): Promise<RelayAnswer[]> {
  const ws = new WebSocket(url);
  await once(ws, 'open');
  const answers: RelayAnswer[] = [];
  ws.on('message', (data) => {
    const msg = JSON.parse(String(data)) as Partial<RelayAnswer>;
    if (msg.id !== undefined) answers.push(msg as RelayAnswer);
  });
  const closed = once(ws, 'close');
  for (const [i, [op, params]] of [['auth', () => ({ token })] as [string, () => unknown], ...ops].entries()) {
    ws.send(JSON.stringify({ id: i + 1, op, params: params(answers) }));
    while (answers.length < i + 1 && ws.readyState === WebSocket.OPEN) await new Promise((r) => setTimeout(r, 10));
  }
  ws.close();
  await closed;
  return answers;
}

/** A full client session: tokens, cards, lookups, revocation, and some failures with secrets in them. */
async function exercise(server: ServerProcess): Promise<void> {
  const { token } = (await (await call(server, 'POST', ApiPath.session, {}, '{"identity":"alice"}')).json()) as { token: string };
  secret(token);
  const auth = { authorization: `Bearer ${token}` };
  const twilio = (await (await call(server, 'GET', ApiPath.twilioToken, auth)).json()) as { token: string; relayUrl?: string };
  secret(twilio.token);
  if (twilio.relayUrl) {
    // Local mode: a relay session with a message, and an attempt with a wrong token.
    const body = secret('e2ee1.relay-message-body-that-must-not-be-logged');
    const answers = await relay(twilio.relayUrl, twilio.token, [
      ['createConversation', () => ({ friendlyName: 'logs' })],
      ['join', (answers) => ({ conversationSid: answers[1]?.result?.sid })],
      ['sendMessage', (answers) => ({ conversationSid: answers[1]?.result?.sid, body })],
    ]);
    expect(answers.map((a) => a.ok)).toEqual([true, true, true, true]);
    await relay(twilio.relayUrl, secret(`${twilio.token.slice(0, -4)}AAAA`), []);
  }

  const device = await newDevice('alice');
  secret(device.request.snapshot);
  secret(device.request.selfSignature);
  secret(toB64u(device.keys.signSeed));
  const card = (await (await call(server, 'POST', ApiPath.cards, auth, JSON.stringify(device.request))).json()) as { id: string; appSignature: string };
  secret(card.appSignature);
  await call(server, 'GET', `${ApiPath.cards}?identity=alice&identity=bob`, auth);
  await call(server, 'GET', ApiPath.card(card.id), auth);
  // A revocation with its device proof (a signature, but a replayable one for minutes: not logged either).
  const proof = secret(await signDeviceProof((m) => sign(m, device.keys.signSecretKey), card.id, { method: 'DELETE', path: ApiPath.card(card.id) }));
  await call(server, 'DELETE', ApiPath.card(card.id), { ...auth, [DEVICE_PROOF_HEADER]: proof });
  await call(server, 'GET', ApiPath.appKey);
  await call(server, 'GET', ApiPath.orgCard);
  await call(server, 'GET', ApiPath.readyz);
  await call(server, 'GET', '/docs/json');

  // Failures carrying secrets: a bad token, a token in a query string, bodies that are refused.
  const wrongToken = `${token.slice(0, -6)}AAAAAA`;
  await call(server, 'GET', ApiPath.twilioToken, { authorization: `Bearer ${secret(wrongToken)}` });
  await call(server, 'GET', `/v1/nothing?token=${secret('query-token-value-123')}`);
  await call(server, 'GET', `${ApiPath.twilioToken}?access_token=${secret('query-access-token-456')}`, auth);
  await call(server, 'POST', ApiPath.cards, auth, `{"snapshot":"${secret('broken-body-secret-789')}"`);
  await call(server, 'POST', ApiPath.session, {}, JSON.stringify({ identity: secret('x'.repeat(300)) }));
  await call(server, 'POST', ApiPath.cards, auth, JSON.stringify({ snapshot: secret('c2VjcmV0LXNuYXBzaG90'), selfSignature: 'AA' }));
}

it('never logs tokens, Authorization headers, seeds, secrets or bodies (demo and Twilio modes)', { timeout: 120_000 }, async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'twilio-e2ee-logs-'));
  dirs.push(dataDir);
  const authSecret = secret('auth-jwt-secret-for-the-log-test-0123456789');
  const apiSecret = secret('twilio-api-secret-for-the-log-test');
  const runs: Record<string, string>[] = [
    { DATA_DIR: dataDir, LOG_LEVEL: 'trace' },
    {
      DATA_DIR: dataDir,
      LOG_LEVEL: 'trace',
      DEMO_MODE: 'true',
      AUTH_JWT_SECRET: authSecret,
      TWILIO_ACCOUNT_SID: `AC${'1'.repeat(32)}`,
      TWILIO_API_KEY: `SK${'2'.repeat(32)}`,
      TWILIO_API_SECRET: apiSecret,
      TWILIO_AUTH_TOKEN: secret('twilio-auth-token-for-the-log-test'),
      TWILIO_CONVERSATIONS_SERVICE_SID: `IS${'3'.repeat(32)}`,
    },
  ];
  let output = '';
  for (const env of runs) {
    const server = await startServerProcess({ env });
    try {
      await exercise(server);
    } finally {
      expect(await server.stop()).toBe(0);
    }
    output += server.output();
  }

  // The keys the server generated and what it derives from them.
  const keys = JSON.parse(readFileSync(join(dataDir, 'keys.json'), 'utf8')) as { appKey: string; orgKey: string };
  const appKey = appKeyFromB64u(secret(keys.appKey));
  secret(keys.orgKey);
  secret(toB64u(appKey.secretKey));
  secret(toB64u(deriveAppSecret(appKey, DEMO_SESSION_SECRET_LABEL)));
  secret(Buffer.from(relayTokenSecret(appKey)).toString('hex'));

  expect(output.length).toBeGreaterThan(10_000); // trace level: a lot was logged, and scanned
  const leaked = [...secrets].filter((s) => output.includes(s) || output.includes(s.replace(/^Bearer /, '')));
  expect(leaked).toEqual([]);
  // Token signatures alone (a JWT's third part) do not appear either.
  for (const s of secrets) if (s.split('.').length === 3) expect(output).not.toContain(s.split('.')[2]);
  expect(output).not.toMatch(/authorization/i);

  const lines = output.split('\n').filter((l) => l.startsWith('{'));
  const requestLines = lines.map((l) => JSON.parse(l) as { req?: unknown; res?: unknown; reqId?: string }).filter((l) => l.req || l.res);
  expect(requestLines.length).toBeGreaterThan(30);
  expect(requestLines.every((l) => typeof l.reqId === 'string' && l.reqId.length > 0)).toBe(true);
  expect(output).toContain('[redacted]'); // the query-string tokens were there, and were replaced
});
