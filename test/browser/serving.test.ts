/**
 * The server side of the demo web client, without a browser (runs where Chromium is missing):
 * the build output at "/", the single-page-app fallback for pages, JSON 404s for the API and
 * for missing files, the security headers, and SERVE_DEMO.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../server/app.js';
import { loadConfig } from '../../server/config.js';
import { shouldServeDemo } from '../../server/demo.js';
import { openStore } from '../../server/store/index.js';
import type { Store } from '../../server/store/types.js';

const INDEX = '<!doctype html><div id="app"></div><script type="module" src="/assets/index-abc123.js"></script>';

let dir: string;
let store: Store;
let withDemo: FastifyInstance;
let apiOnly: FastifyInstance;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'e2ee-demo-serving-'));
  const dist = join(dir, 'dist');
  mkdirSync(join(dist, 'assets'), { recursive: true });
  writeFileSync(join(dist, 'index.html'), INDEX);
  writeFileSync(join(dist, 'assets', 'index-abc123.js'), 'console.log(1)');
  const config = await loadConfig({ DATA_DIR: join(dir, 'data'), LOG_LEVEL: 'silent' });
  store = await openStore({ dataDir: join(dir, 'data') });
  withDemo = await buildApp({ config, store, demo: { distDir: dist } });
  apiOnly = await buildApp({ config, store });
});

afterAll(async () => {
  await withDemo?.close();
  await apiOnly?.close();
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

const html = { accept: 'text/html,application/xhtml+xml' };

describe('serving the demo', () => {
  it('serves index.html at "/" with a strict CSP and no caching', async () => {
    const response = await withDemo.inject({ url: '/', headers: html });
    expect(response.statusCode).toBe(200);
    expect(response.body).toBe(INDEX);
    expect(response.headers['content-type']).toMatch(/^text\/html/);
    expect(response.headers['cache-control']).toBe('no-cache');
    const csp = String(response.headers['content-security-policy']);
    expect(csp).toContain("script-src 'self' 'wasm-unsafe-eval'");
    expect(csp).toContain("object-src 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(response.headers['x-content-type-options']).toBe('nosniff');
  });

  it('serves content-hashed assets as immutable', async () => {
    const response = await withDemo.inject({ url: '/assets/index-abc123.js' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['cache-control']).toContain('immutable');
  });

  it('answers page URLs with the app (single-page fallback)', async () => {
    for (const url of ['/c/CH123', '/some/deep/page?x=1']) {
      const response = await withDemo.inject({ url, headers: html });
      expect(response.statusCode, url).toBe(200);
      expect(response.body).toBe(INDEX);
    }
  });

  it('keeps JSON 404s for the API, other methods, non-HTML clients and missing files', async () => {
    const cases = [
      { method: 'GET', url: '/v1/nope', headers: html },
      { method: 'GET', url: '/v1/cards/x/y', headers: html },
      { method: 'POST', url: '/somewhere', headers: html },
      { method: 'GET', url: '/some/page', headers: { accept: 'application/json' } },
      { method: 'GET', url: '/assets/missing.js', headers: html },
      { method: 'GET', url: '/.staging-x/index.html', headers: html },
    ] as const;
    for (const c of cases) {
      const response = await withDemo.inject(c);
      expect(response.statusCode, `${c.method} ${c.url}`).toBe(404);
      expect(response.json(), `${c.method} ${c.url}`).toMatchObject({ error: { code: 'NOT_FOUND' } });
    }
  });

  it('leaves the API as it is', async () => {
    expect((await withDemo.inject({ url: '/healthz' })).statusCode).toBe(200);
    expect((await withDemo.inject({ url: '/v1/app-key' })).json()).toHaveProperty('publicKey');
    expect((await withDemo.inject({ url: '/docs/json' })).statusCode).toBe(200);
  });

  it('serves nothing at "/" without the demo option', async () => {
    const response = await apiOnly.inject({ url: '/', headers: html });
    expect(response.statusCode).toBe(404);
    expect(response.json()).toMatchObject({ error: { code: 'NOT_FOUND' } });
  });
});

describe('SERVE_DEMO', () => {
  it('defaults to demo mode and accepts explicit true/false', () => {
    expect(shouldServeDemo({}, true)).toBe(true);
    expect(shouldServeDemo({}, false)).toBe(false);
    expect(shouldServeDemo({ SERVE_DEMO: 'false' }, true)).toBe(false);
    expect(shouldServeDemo({ SERVE_DEMO: 'true' }, false)).toBe(true);
    expect(shouldServeDemo({ SERVE_DEMO: ' ' }, true)).toBe(true);
    expect(() => shouldServeDemo({ SERVE_DEMO: 'maybe' }, true)).toThrow(/SERVE_DEMO must be true or false/);
  });
});
