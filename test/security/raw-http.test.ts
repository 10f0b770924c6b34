/**
 * Hostile requests over a real socket, written byte for byte (issue #8): path traversal against
 * every static and parameterized path (the demo web client, the API docs' assets, card ids,
 * conversation sids) in every encoding, and malformed HTTP that Node's parser refuses before any
 * route runs. No answer is a 5xx; every error is in the error shape; no answer carries a byte of
 * a file outside the served directories (the key file, the database, the package, /etc/passwd).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiPath } from '../../shared/api.js';
import { session } from '../support/app.js';
import { rawGet, rawRequest, type RawResponse } from '../support/raw-http.js';
import { answerProblem, securityServer, type SecurityServer } from '../support/security.js';

let server: SecurityServer;
let port: number;
let distDir: string;
let token: string;
/** Text that must never appear in an answer: each marks a file outside what the server serves. */
let markers: Record<string, string>;
const INDEX_HTML = '<!doctype html><title>demo</title><script src="/assets/app-0123.js"></script>';
const ASSET = 'console.log("demo asset");';

beforeAll(async () => {
  distDir = mkdtempSync(join(tmpdir(), 'e2ee-security-dist-'));
  writeFileSync(join(distDir, 'index.html'), INDEX_HTML);
  mkdirSync(join(distDir, 'assets'));
  writeFileSync(join(distDir, 'assets', 'app-0123.js'), ASSET);
  writeFileSync(join(distDir, '.env'), 'HIDDEN=dotfile-marker-7c1e');
  server = await securityServer({ listen: true, demoDistDir: distDir });
  port = (server.app.server.address() as { port: number }).port;
  token = (await session(server.app, 'alice')).token;
  const keys = JSON.parse(readFileSync(join(server.dataDir, 'keys.json'), 'utf8')) as { appKey: string; orgKey: string };
  markers = {
    'the AppKey seed (keys.json)': keys.appKey,
    'the OrgKey seed (keys.json)': keys.orgKey,
    'the SQLite database': 'SQLite format 3',
    'package.json': '"devDependencies"',
    'server source': 'export async function buildApp',
    '/etc/passwd': 'root:x:0:0',
    'a dotfile of the served directory': 'dotfile-marker-7c1e',
  };
});

afterAll(async () => {
  await server?.close();
  rmSync(distDir, { recursive: true, force: true });
});

function leaks(res: RawResponse): string[] {
  return Object.entries(markers)
    .filter(([, marker]) => res.raw.includes(marker))
    .map(([name]) => name);
}

/** A 200 may only be a served file or an API answer; everything else: an error-shaped 4xx. */
function checkAnswer(path: string, res: RawResponse): void {
  expect(res.statusCode, `${path}: ${res.raw.slice(0, 200)}`).toBeGreaterThanOrEqual(200);
  expect(leaks(res), path).toEqual([]);
  expect(answerProblem(res, { success: [200, 204, 301, 302, 304] }), path).toBeNull();
}

describe('path traversal over a raw socket', () => {
  const ups = ['../', '..%2f', '..%2F', '%2e%2e/', '%2e%2e%2f', '.%2e/', '%2e./', '..%5c', '..\\', '%252e%252e%252f', '%c0%ae%c0%ae/', '....//', '..;/', '%2e%2e%00/'];
  const prefixes = ['/', '/assets/', '/docs/static/', '/docs/', `${ApiPath.cards}/`, `${ApiPath.history}/`, '/v1/', '/index.html/'];

  it('never serves a file outside the served directories, in any encoding, from any prefix', async () => {
    const targets = [
      'package.json',
      'server/app.ts',
      'etc/passwd',
      `${server.dataDir.slice(1)}/keys.json`,
      `${server.dataDir.slice(1)}/twilio-e2ee.sqlite`,
      '.env',
    ];
    let sent = 0;
    for (const prefix of prefixes) {
      for (const up of ups) {
        for (const target of targets) {
          const path = `${prefix}${up.repeat(10)}${target}${prefix.startsWith('/v1/history') ? `?cardId=${'a'.repeat(64)}` : ''}`;
          // Browsers ask for pages with Accept: text/html (the SPA fallback answers index.html then).
          for (const accept of ['application/json', 'text/html']) {
            const res = await rawRequest(port, rawGet(path, { accept, authorization: `Bearer ${token}` }));
            checkAnswer(path, res);
            if (res.statusCode === 200 && accept === 'text/html' && !path.startsWith('/docs') && !path.startsWith('/v1')) expect(res.body).toBe(INDEX_HTML);
            sent++;
          }
        }
      }
    }
    console.info(`[security] path traversal: ${sent} raw requests, 5xx: 0, files leaked: 0`);
  });

  it('serves the demo\'s own files, and not its dotfiles, absolute paths or encoded separators', async () => {
    expect((await rawRequest(port, rawGet('/assets/app-0123.js'))).body).toBe(ASSET);
    for (const path of ['/.env', '/assets/%2e%2e/.env', '/%2e%2e/.env', `//${server.dataDir.slice(1)}/keys.json`, '/assets%2fapp-0123.js', '/assets/app-0123.js%00.html']) {
      const res = await rawRequest(port, rawGet(path));
      checkAnswer(path, res);
      expect(res.body).not.toBe(ASSET);
    }
  });

  it('treats path tricks in ids as ids: the schema refuses them (400) or no route matches (404)', async () => {
    const headers = { authorization: `Bearer ${token}` };
    for (const id of ['..', '.', '%2e%2e', '..%2f..%2fapp-key', '%2e%2e%2fapp-key', `${'a'.repeat(64)}%2f..`, `${'a'.repeat(64)}/..`, '%00', 'a%00', '%zz', '%', `${'a'.repeat(800)}`]) {
      for (const path of [`${ApiPath.cards}/${id}`, `${ApiPath.history}/${id}?cardId=${'a'.repeat(64)}`]) {
        for (const method of ['GET', 'DELETE']) {
          const res = await rawRequest(port, rawGet(path, headers).replace(/^GET/, method));
          checkAnswer(`${method} ${path}`, res);
          expect(res.statusCode, `${method} ${path}`).toBeGreaterThanOrEqual(400);
        }
      }
    }
  });
});

describe('malformed HTTP over a raw socket', () => {
  const auth = () => `Authorization: Bearer ${token}\r\n`;
  const cases: [string, () => string | Buffer][] = [
    ['a header line without a colon', () => `GET /v1/app-key HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n`],
    ['headers over the size limit (with a bearer token)', () => `GET /v1/app-key HTTP/1.1\r\nHost: x\r\n${auth()}X-Big: ${'a'.repeat(20_000)}\r\n\r\n`],
    ['an invalid method', () => `G@T /v1/app-key HTTP/1.1\r\nHost: x\r\n\r\n`],
    ['an unknown HTTP version', () => `GET /v1/app-key HTTP/9.9\r\nHost: x\r\n\r\n`],
    ['no HTTP version', () => `GET /v1/app-key\r\nHost: x\r\n\r\n`],
    ['a control character in the path', () => `GET /v1/cards/\x01 HTTP/1.1\r\nHost: x\r\n${auth()}\r\n`],
    ['a space in the path', () => `GET /v1/cards/a b HTTP/1.1\r\nHost: x\r\n${auth()}\r\n`],
    ['a NUL in a header value', () => `GET /v1/app-key HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n`],
    ['Content-Length and Transfer-Encoding together (smuggling)', () => `POST /v1/session HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /v1/app-key HTTP/1.1\r\nHost: x\r\n\r\n`],
    ['two different Content-Lengths', () => `POST /v1/session HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 20\r\n\r\n{}`],
    ['a negative Content-Length', () => `POST /v1/session HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: -1\r\n\r\n{}`],
    ['a broken chunk size', () => `POST /v1/session HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`],
    ['an obsolete line folding', () => `GET /v1/app-key HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n`],
    ['bare LF line endings', () => `GET /v1/app-key HTTP/1.1\nHost: x\nX-A: \x7f\n\n`],
    ['binary garbage', () => Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0x0d, 0x0a, 0x0d, 0x0a])],
    ['an absolute-form target for another host', () => `GET http://evil.example/v1/app-key HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n`],
    ['an asterisk-form target', () => `OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`],
  ];

  it.each(cases)('answers %s in the error shape (or normally), never 5xx, and keeps serving', async (_name, request) => {
    const res = await rawRequest(port, request());
    expect(res.statusCode, res.raw.slice(0, 300)).toBeGreaterThanOrEqual(200);
    expect(answerProblem(res, { success: [200] }), res.raw.slice(0, 300)).toBeNull();
    expect(res.raw).not.toContain(token);
    const health = await rawRequest(port, rawGet(ApiPath.healthz));
    expect(health.statusCode).toBe(200);
  });
});
