/**
 * The OpenAPI UI at /docs (the security review's finding 13): a web page on the key service's origin, so it is served
 * only in demo mode or with SERVE_DOCS=true, and then under a strict Content-Security-Policy that
 * the UI works under (checked in Chromium: it renders the document with no CSP violation).
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DOCS_CSP } from '../../server/app.js';
import { seedToB64u } from '../../shared/index.js';
import { errorCode } from '../support/app.js';
import { historyServer, type HistoryServer } from '../support/history.js';

const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const PRODUCTION = { NODE_ENV: 'production', APP_KEY: seedToB64u(randomBytes(32)), LOG_KEY: seedToB64u(randomBytes(32)), AUTH_JWT_SECRET: 'docs-test-secret-0123456789abcdefghij' };
const DOCS_URLS = ['/docs', '/docs/', '/docs/json', '/docs/static/swagger-ui.css', '/docs/static/swagger-ui-bundle.js', '/docs/static/swagger-initializer.js'];

describe('in production by default', () => {
  let server: HistoryServer;
  beforeAll(async () => {
    server = await historyServer(PRODUCTION);
  });
  afterAll(() => server?.close());

  it.each(DOCS_URLS)('%s is 404 NOT_FOUND', async (url) => {
    const res = await server.app.inject({ url });
    expect(res.statusCode).toBe(404);
    expect(errorCode(res)).toBe('NOT_FOUND');
  });
});

describe('with SERVE_DOCS=true', () => {
  let server: HistoryServer;
  beforeAll(async () => {
    server = await historyServer({ ...PRODUCTION, SERVE_DOCS: 'true' });
  });
  afterAll(() => server?.close());

  it.each(DOCS_URLS.filter((url) => url !== '/docs'))('%s is served under the strict Content-Security-Policy', async (url) => {
    const res = await server.app.inject({ url });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-security-policy']).toBe(DOCS_CSP);
  });

  it('allows no inline script, no other origin and no framing', () => {
    expect(DOCS_CSP).toContain("default-src 'none'");
    expect(DOCS_CSP).toContain("script-src 'self'");
    expect(DOCS_CSP).toContain("frame-ancestors 'none'");
    expect(DOCS_CSP).not.toMatch(/unsafe-|https?:|\*/);
  });

  it('leaves the API routes without it (they are JSON, not pages)', async () => {
    expect((await server.app.inject({ url: '/healthz' })).headers['content-security-policy']).toBeUndefined();
  });

  it.skipIf(!existsSync(CHROMIUM_PATH) && process.env.CI !== 'true')('renders in Chromium under that policy, with no violation', async () => {
    const address = await server.app.listen({ host: '127.0.0.1', port: 0 });
    const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: ['--headless', '--no-sandbox', '--disable-gpu'] });
    try {
      const page = await browser.newPage();
      const violations: string[] = [];
      page.on('console', (message) => {
        if (/Content Security Policy/i.test(message.text())) violations.push(message.text());
      });
      await page.addInitScript(() => {
        document.addEventListener('securitypolicyviolation', (e) => console.error(`Content Security Policy violation: ${e.violatedDirective} ${e.blockedURI} ${e.sample}`));
      });
      const response = await page.goto(`${address}/docs/`);
      expect(response?.headers()['content-security-policy']).toBe(DOCS_CSP);
      await page.waitForSelector('.swagger-ui .info .title', { timeout: 15_000 });
      expect(await page.textContent('.swagger-ui .info .title')).toContain('twilio-e2ee');
      await page.waitForSelector('.opblock', { timeout: 15_000 }); // the routes, from /docs/json
      expect(await page.locator('.opblock').count()).toBeGreaterThan(10);
      expect(violations).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});

describe('in demo mode', () => {
  let server: HistoryServer;
  beforeAll(async () => {
    server = await historyServer();
  });
  afterAll(() => server?.close());

  it('serves /docs by default, under the same policy', async () => {
    const res = await server.app.inject({ url: '/docs/' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-security-policy']).toBe(DOCS_CSP);
  });
});
