/**
 * The demo web client (client/demo), served by the standalone server at "/" next to the API.
 *
 * - `registerDemo` serves the Vite build output, with a single-page-app fallback: any GET for a
 *   page that is not a file and not an API path answers index.html, while /v1, /docs and the
 *   health checks keep their JSON 404s.
 * - `prepareDemo` decides whether to serve it (SERVE_DEMO, else whenever demo mode is on) and
 *   builds it with Vite's JS API when the build is missing or older than its sources, so that
 *   `npm install && npm start` is all a developer runs.
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

export interface DemoOptions {
  /** The Vite build output (client/demo/dist): index.html and assets/. */
  distDir: string;
}

/** Paths that belong to the service: never answered with the web app. */
const SERVICE_PATHS = /^\/(v1|docs|healthz|readyz)(\/|$)/;

/**
 * The page's Content-Security-Policy. End-to-end encryption is only as good as the code that
 * runs in the page, so only the page's own scripts run: no inline script, no eval.
 * 'wasm-unsafe-eval' lets libsodium compile its WebAssembly; Twilio mode talks to *.twilio.com.
 * Images may be blob: URLs: the files the page itself decrypted, and their previews.
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "connect-src 'self' https://*.twilio.com wss://*.twilio.com",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
  "form-action 'self'",
].join('; ');

function setHeaders(reply: FastifyReply, path: string): void {
  reply.header('x-content-type-options', 'nosniff');
  reply.header('referrer-policy', 'no-referrer');
  if (path.endsWith('.html')) {
    reply.header('content-security-policy', CONTENT_SECURITY_POLICY);
    reply.header('cache-control', 'no-cache'); // always revalidate: it names the current assets
  } else if (/[\\/]assets[\\/]/.test(path)) {
    reply.header('cache-control', 'public, max-age=31536000, immutable'); // content-hashed names
  }
}

/** Serves the built demo at "/". Register after the API routes' 404 handling is in place. */
export async function registerDemo(app: FastifyInstance, options: DemoOptions): Promise<void> {
  await app.register(fastifyStatic, {
    root: options.distDir,
    prefix: '/',
    // A wildcard route (not one route per file found at start-up), so a rebuild is served at once.
    wildcard: true,
    index: 'index.html',
    dotfiles: 'ignore',
    cacheControl: false, // set by setHeaders
    setHeaders,
  });
}

/**
 * The 404 handler of the whole app when the demo is served: pages of the web app (GET/HEAD of a
 * non-service path that accepts HTML) get index.html; everything else gets `fallback` (JSON).
 */
export function spaNotFoundHandler(
  fallback: (request: FastifyRequest, reply: FastifyReply) => FastifyReply,
): (request: FastifyRequest, reply: FastifyReply) => FastifyReply | Promise<FastifyReply> {
  return (request, reply) => {
    const path = request.url.split('?')[0] ?? '';
    const page = (request.method === 'GET' || request.method === 'HEAD') && !SERVICE_PATHS.test(path) && !/\.[A-Za-z0-9]+$/.test(path);
    if (!page || !(request.headers.accept ?? '').includes('text/html')) return fallback(request, reply);
    return reply.sendFile('index.html');
  };
}

/** Where the demo's sources are: beside server/ in the repository (also when run from dist/). */
export function demoRoot(): string | null {
  for (const up of ['../client/demo/', '../../client/demo/']) {
    const dir = fileURLToPath(new URL(up, import.meta.url));
    if (existsSync(join(dir, 'vite.config.ts'))) return dir;
  }
  return null;
}

/** Whether to serve the demo: SERVE_DEMO when set, else whenever demo mode (demo login) is on. */
export function shouldServeDemo(env: Record<string, string | undefined>, demoMode: boolean): boolean {
  const text = env.SERVE_DEMO?.trim().toLowerCase();
  if (!text) return demoMode;
  if (['1', 'true', 'yes', 'on'].includes(text)) return true;
  if (['0', 'false', 'no', 'off'].includes(text)) return false;
  throw new Error(`SERVE_DEMO must be true or false, got "${env.SERVE_DEMO}"`);
}

/** The newest modification time (ms) of the files the demo bundle is made from. */
function newestSource(root: string): number {
  const repo = join(root, '..', '..');
  let newest = 0;
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.name.startsWith('.') || entry.name === 'node_modules' || entry.name === 'dist') continue;
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else newest = Math.max(newest, statSync(path).mtimeMs);
    }
  };
  for (const dir of ['client', 'shared']) walk(join(repo, dir));
  const lock = join(repo, 'package-lock.json'); // a dependency update (libsodium, the Twilio SDK)
  if (existsSync(lock)) newest = Math.max(newest, statSync(lock).mtimeMs);
  return newest;
}

export type DemoBuildState = 'fresh' | 'built' | 'stale (vite unavailable)';

/**
 * Builds the demo into `<root>/dist` unless it is up to date. Safe when several processes do
 * it at once: each builds into its own staging directory inside dist/, then moves the
 * content-hashed assets in and replaces index.html last (an atomic rename), so a running server
 * never serves an index.html whose assets are missing.
 */
export async function buildDemo(root: string, options: { force?: boolean } = {}): Promise<DemoBuildState> {
  const dist = join(root, 'dist');
  const index = join(dist, 'index.html');
  const builtAt = existsSync(index) ? statSync(index).mtimeMs : 0;
  if (!options.force && builtAt > 0 && builtAt >= newestSource(root)) return 'fresh';

  let vite: typeof import('vite');
  try {
    vite = await import('vite');
  } catch (err) {
    // Production installs without devDependencies: serve what was built, if anything.
    if (builtAt > 0) return 'stale (vite unavailable)';
    throw new Error(`the demo web client is not built and Vite is not installed (${(err as Error).message}); run \`npm run build:demo\``);
  }
  removeAbandonedStaging(dist);
  const staging = join(dist, `.staging-${randomUUID()}`);
  try {
    await vite.build({ configFile: join(root, 'vite.config.ts'), logLevel: 'warn', build: { outDir: staging, emptyOutDir: true } });
    moveInto(staging, dist, (path) => path !== 'index.html');
    renameSync(join(staging, 'index.html'), index);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  return 'built';
}

/** Staging directories of builds that were killed midway (older than any build takes). */
function removeAbandonedStaging(dist: string): void {
  if (!existsSync(dist)) return;
  for (const entry of readdirSync(dist)) {
    const path = join(dist, entry);
    if (entry.startsWith('.staging-') && Date.now() - statSync(path).mtimeMs > 10 * 60_000) rmSync(path, { recursive: true, force: true });
  }
}

/** Moves every file under `from` to the same place under `to` (replacing), where `pick` says so. */
function moveInto(from: string, to: string, pick: (relativePath: string) => boolean, base = from): void {
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    const source = join(from, entry.name);
    const target = join(to, entry.name);
    if (entry.isDirectory()) {
      mkdirSync(target, { recursive: true });
      moveInto(source, target, pick, base);
    } else if (pick(relative(base, source))) {
      renameSync(source, target);
    }
  }
}

/**
 * For the standalone server: the demo options to pass to buildApp (building first if needed),
 * or null when the demo is not served. `log` reports what happened.
 */
export async function prepareDemo(
  env: Record<string, string | undefined>,
  demoMode: boolean,
  log: { info(msg: string): void; warn(msg: string): void },
): Promise<DemoOptions | null> {
  if (!shouldServeDemo(env, demoMode)) return null;
  const root = demoRoot();
  if (!root) {
    log.warn('the demo web client is not in this installation (client/demo): serving the API only');
    return null;
  }
  const started = Date.now();
  const state = await buildDemo(root);
  if (state === 'built') log.info(`demo web client built into ${join(root, 'dist')} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  if (state === 'stale (vite unavailable)') log.warn('the demo web client is older than its sources and Vite is not installed to rebuild it');
  return { distDir: join(root, 'dist') };
}
