/**
 * Slow clients over a raw socket (issue #7): a request whose body or headers trickle in a byte at
 * a time is cut off once REQUEST_TIMEOUT passes, with 408 in the error shape and the socket
 * closed, while other clients are served as usual. The timeouts are short here (1 s); the
 * defaults are in server/app.ts.
 */
import { connect } from 'node:net';
import { performance } from 'node:perf_hooks';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_REQUEST_TIMEOUT_MS, HEADERS_TIMEOUT_MS, serverOptions } from '../../server/app.js';
import { ApiPath } from '../../shared/api.js';
import { session } from '../support/app.js';
import { rawGet, rawRequest } from '../support/raw-http.js';
import { securityServer, type SecurityServer } from '../support/security.js';

const REQUEST_TIMEOUT_S = 1;
/** A byte every this many ms: the connection never goes idle, the request never completes. */
const TRICKLE_EVERY_MS = 200;

interface Trickled {
  statusCode: number;
  body: string;
  /** From the first byte written to the socket's close. */
  closedAfterMs: number;
  /** Bytes of `rest` written before the server closed the socket. */
  trickledBytes: number;
}

/** Writes `head` at once, then `rest` one byte every TRICKLE_EVERY_MS until the server closes the socket. */
function trickle(port: number, head: string, rest: string, giveUpMs = 15_000): Promise<Trickled> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    const start = performance.now();
    let sent = 0;
    const timer = setInterval(() => {
      if (sent < rest.length && socket.writable) socket.write(rest[sent++]!);
    }, TRICKLE_EVERY_MS);
    const giveUp = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server still held the connection after ${giveUpMs} ms (${sent} bytes trickled)`));
    }, giveUpMs);
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearInterval(timer);
      clearTimeout(giveUp);
      const raw = Buffer.concat(chunks).toString('utf8');
      const statusCode = Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1] ?? 0);
      resolve({ statusCode, body: raw.split('\r\n\r\n').slice(1).join('\r\n\r\n'), closedAfterMs: performance.now() - start, trickledBytes: sent });
    });
    socket.write(head);
  });
}

let server: SecurityServer;
let port: number;
let authorization: string;

beforeAll(async () => {
  server = await securityServer({ listen: true, env: { REQUEST_TIMEOUT: String(REQUEST_TIMEOUT_S) } });
  port = (server.app.server.address() as { port: number }).port;
  authorization = `Bearer ${(await session(server.app, 'slow-client')).token}`;
});
afterAll(() => server?.close());

describe(`REQUEST_TIMEOUT=${REQUEST_TIMEOUT_S}`, () => {
  it('cuts off a POST body trickled at a byte per 200 ms with 408 in the error shape, and closes the socket', async () => {
    const body = JSON.stringify({ conversationSid: 'CHslow', messageSid: 'IMslow', index: 0, envelope: 'x'.repeat(400), orgWrap: 'y'.repeat(107) });
    const head = `POST ${ApiPath.history} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: ${authorization}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
    const answer = await trickle(port, head, body);
    expect(answer.statusCode, answer.body).toBe(408);
    expect(JSON.parse(answer.body)).toEqual({ error: { code: 'BAD_REQUEST', message: 'the request was not received in time' } });
    expect(answer.trickledBytes).toBeLessThan(body.length);
    // The timeout, plus at most the 1 s interval at which Node checks it, plus slack for a busy machine.
    expect(answer.closedAfterMs).toBeLessThan(REQUEST_TIMEOUT_S * 1000 + 2_500);
  });

  it('cuts off request headers trickled in the same way (408)', async () => {
    const answer = await trickle(port, 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n', `X-Slow: ${'z'.repeat(200)}\r\n\r\n`);
    expect(answer.statusCode, answer.body).toBe(408);
    expect(JSON.parse(answer.body)).toMatchObject({ error: { code: 'BAD_REQUEST' } });
    expect(answer.closedAfterMs).toBeLessThan(REQUEST_TIMEOUT_S * 1000 + 2_500);
  });

  it('serves other clients while slow ones trickle', async () => {
    const slow = trickle(port, `POST ${ApiPath.history} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n`, '{'.repeat(500));
    const healthy = await rawRequest(port, rawGet(ApiPath.healthz));
    expect(healthy.statusCode).toBe(200);
    expect((await slow).statusCode).toBe(408);
  });
});

describe('serverOptions (for teams mounting the plugin)', () => {
  it('carries the default timeouts to a Fastify server built with them', async () => {
    const app = Fastify({ ...serverOptions });
    try {
      await app.ready();
      expect(app.server.requestTimeout).toBe(DEFAULT_REQUEST_TIMEOUT_MS);
      expect(app.server.headersTimeout).toBe(HEADERS_TIMEOUT_MS);
      expect(app.server.keepAliveTimeout).toBeGreaterThan(60_000);
      expect(app.server.timeout).toBeGreaterThan(0);
    } finally {
      await app.close();
    }
  });
});
