/**
 * docs/API.md "Adding it to an app, step by step", taken in a temporary folder outside the
 * repository (issue "Adoption", "Done when"): the package from `npm pack`, installed with the
 * page's commands (Fastify at the lowest version the peer range allows) into an app whose server
 * and client are the page's files. The app has its own JWT sign-in into `request.identity`, its
 * own /healthz and websocket route, @fastify/websocket registered before the plugin, the plugin
 * under /e2ee, and a PostgreSQL database (created per run, dropped after) whose `messages` and
 * `schema_migrations` tables hold rows. It type-checks under NodeNext and Bundler with the
 * libraries' declarations, starts, and a client bundled by esbuild (platform node,
 * twilio-e2ee/client/node, run from a folder without node_modules) carries alice's message to bob.
 *
 * Installs come from npm's cache (`--offline`), else the registry. The build tools (typescript,
 * esbuild, @types/*) come from the cache at the repository's versions, else from the repository's
 * own node_modules: `npm pack node_modules/<name>` (with its platform binary) and an install of
 * those tarballs. Without PostgreSQL, or with neither npm's cache nor the registry, it skips,
 * except under CI=true (fails). Takes about 30 s.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ApiPath } from '../shared/api.js';
import { signJwt } from './support/jwt.js';
import { LOWEST_FASTIFY, ROOT, installedVersion, newApp, npmInstall, npmInstallWith, packInstalled, packWorkingTree, pkg, run } from './support/npm-package.js';
import { runPostgres, TEST_DATABASE_URL } from './support/stores.js';

const GUIDE_TITLE = '## Adding it to an app, step by step';
const PREFIX = '/e2ee';
const TEXT = 'launch on Thursday, tell no one';
/** The app's JWT secret (AUTH_JWT_SECRET: at least 32 characters). */
const JWT_SECRET = randomBytes(32).toString('base64url');
/** What the app's database holds before it adds the service. */
const APP_MESSAGES = [
  { id: 1, author: 'alice', body: 'welcome to acme chat' },
  { id: 2, author: 'bob', body: 'hi all' },
];
const APP_MIGRATIONS = ['20240101_create_messages', '20240301_add_author'];

/** The guide's section of docs/API.md. */
function guide(): string {
  const api = readFileSync(join(ROOT, 'docs/API.md'), 'utf8');
  const start = api.indexOf(GUIDE_TITLE);
  if (start < 0) throw new Error(`docs/API.md has no "${GUIDE_TITLE}"`);
  const end = api.indexOf('\n## ', start + GUIDE_TITLE.length);
  return api.slice(start, end < 0 ? undefined : end);
}
const GUIDE = guide();
const blocks = [...GUIDE.matchAll(/```(\w+)\n([\s\S]*?)```/g)].map(([, lang, code]) => ({ lang: lang!, code: code! }));
/** The guide's file whose block starts with `// <path>`. */
function guideFile(path: string): string {
  const block = blocks.find(({ code }) => code.startsWith(`// ${path}\n`));
  if (!block) throw new Error(`the guide has no block starting with "// ${path}"`);
  return block.code;
}
/** The guide's `npm install` lines: the app's packages, then (`-D`) its build tools. */
function guideInstalls(): { packages: string[]; tools: string[] } {
  const lines = [...GUIDE.matchAll(/^npm install (.*)$/gm)].map((m) => m[1]!.split(/\s+/));
  const tools = lines.find((words) => words[0] === '-D')?.slice(1);
  const packages = lines.find((words) => words[0] === 'twilio-e2ee');
  if (!tools || !packages) throw new Error('the guide has no `npm install twilio-e2ee …` and `npm install -D …` lines');
  return { packages, tools };
}

const work = mkdtempSync(join(tmpdir(), 'twilio-e2ee-adoption-'));
const database = `adoption_${randomBytes(6).toString('hex')}`;
const databaseUrl = (() => {
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `/${database}`;
  return url.toString();
})();

async function sql<T extends pg.QueryResultRow>(connectionString: string, text: string): Promise<T[]> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    return (await client.query<T>(text)).rows;
  } finally {
    await client.end();
  }
}

/**
 * The build tools as dev dependencies: from npm's cache at the repository's versions, else the
 * repository's own copies packed into tarballs (the cache often lacks a tool's platform binary).
 */
function installTools(app: string, tools: string[]): boolean {
  if (npmInstallWith('--offline', app, ['-D', ...tools.map((name) => `${name}@${installedVersion(name)}`)]).status === 0) return true;
  console.log(`build tools not all in npm's cache: installing the repository's copies of ${tools.join(', ')}`);
  return npmInstall(app, ['-D', ...tools.flatMap((name) => packInstalled(work, name))]);
}

/** The page's keygen output: the server's secrets and the public keys clients pin. */
interface Keys {
  APP_KEY: string;
  ORG_KEY: string;
  appPublicKey: string;
  orgPublicKey: string;
}

function keygen(app: string): Keys {
  const result = run('npx', ['--no', 'twilio-e2ee', 'keygen'], app);
  expect(result.status, result.stderr).toBe(0);
  const pick = (pattern: RegExp) => {
    const value = pattern.exec(result.stdout)?.[1];
    if (!value) throw new Error(`keygen printed no ${pattern}:\n${result.stdout}`);
    return value;
  };
  return {
    APP_KEY: pick(/^APP_KEY=(\S+)$/m),
    ORG_KEY: pick(/^ORG_KEY=(\S+)$/m),
    appPublicKey: pick(/appPublicKeys: \['([^']+)'\]/),
    orgPublicKey: pick(/orgPublicKeys: \['([^']+)'\]/),
  };
}

/** Starts `npm start`'s command in `app` and resolves with its URL once it listens. */
async function start(app: string, command: string, env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; url: string; output: () => string }> {
  const [bin, ...args] = command.split(' ');
  expect(bin).toBe('node');
  const child = spawn(process.execPath, args, { cwd: app, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const listening = new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      const url = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(output)?.[1];
      if (url) resolve(url);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`the app exited with ${code} before listening:\n${output}`)));
    setTimeout(() => reject(new Error(`the app did not listen within 20 s:\n${output}`)), 20_000).unref();
  });
  return { child, url: await listening, output: () => output };
}

describe.skipIf(!runPostgres)('an app outside the repository adds twilio-e2ee as docs/API.md shows', () => {
  let app = '';
  let installed = false;
  let databaseMade = false;
  let server: Awaited<ReturnType<typeof start>> | undefined;
  let keys: Keys;
  const token = (identity: string, secret = JWT_SECRET) => signJwt({ sub: identity }, 'HS256', secret);
  const scripts = () => (JSON.parse(readFileSync(join(app, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;

  beforeAll(async () => {
    const { tarball } = packWorkingTree(work);
    app = newApp(work, 'acme-chat');
    const { packages, tools } = guideInstalls();
    const specs = packages.map((spec) => (spec === 'twilio-e2ee' ? tarball : spec.startsWith('fastify@') ? `fastify@${LOWEST_FASTIFY}` : spec));
    installed = npmInstall(app, specs) && installTools(app, tools);
    if (!installed) return;

    // The app's own database: its tables, with rows, before it adds the service.
    await sql(TEST_DATABASE_URL, `CREATE DATABASE ${pg.escapeIdentifier(database)}`);
    databaseMade = true;
    const values = APP_MESSAGES.map((m) => `(${m.id}, ${pg.escapeLiteral(m.author)}, ${pg.escapeLiteral(m.body)})`).join(', ');
    await sql(databaseUrl, `
      CREATE TABLE schema_migrations (version text PRIMARY KEY);
      INSERT INTO schema_migrations VALUES ${APP_MIGRATIONS.map((v) => `(${pg.escapeLiteral(v)})`).join(', ')};
      CREATE TABLE messages (id integer PRIMARY KEY, author text NOT NULL, body text NOT NULL);
      INSERT INTO messages VALUES ${values};`);

    mkdirSync(join(app, 'src'));
    for (const path of ['src/server.ts', 'src/chat.ts', 'tsconfig.json', 'tsconfig.bundler.json']) writeFileSync(join(app, path), guideFile(path));
    const scriptsBlock = blocks.find(({ lang, code }) => lang === 'json' && code.includes('"build:client"'));
    if (!scriptsBlock) throw new Error('the guide has no package.json block with a build:client script');
    const manifest = JSON.parse(readFileSync(join(app, 'package.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(app, 'package.json'), JSON.stringify({ ...manifest, ...(JSON.parse(scriptsBlock.code) as object) }, null, 2));
    keys = keygen(app);
  }, 170_000);

  afterAll(async () => {
    if (server && server.child.exitCode === null) {
      server.child.kill('SIGTERM');
      await once(server.child, 'exit');
    }
    if (databaseMade) await sql(TEST_DATABASE_URL, `DROP DATABASE IF EXISTS ${pg.escapeIdentifier(database)} WITH (FORCE)`);
    rmSync(work, { recursive: true, force: true });
  }, 30_000);

  it("installs the server's packages in the ranges the package declares, on the lowest Fastify", ({ skip }) => {
    if (!installed) return skip();
    // The guide's line is README's with pg for better-sqlite3: every optional peer at its declared range.
    const peers = Object.keys(pkg.peerDependencies).filter((name) => pkg.peerDependenciesMeta[name]?.optional && name !== 'better-sqlite3');
    expect(guideInstalls().packages).toEqual(['twilio-e2ee', ...peers.map((name) => `${name}@${pkg.peerDependencies[name]}`)]);
    const version = (name: string) => (JSON.parse(readFileSync(join(app, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
    expect(version('fastify')).toBe(LOWEST_FASTIFY);
    expect(existsSync(join(app, 'node_modules/better-sqlite3'))).toBe(false);
    for (const tool of guideInstalls().tools) expect(version(tool), tool).toBe(installedVersion(tool));
  });

  it('type-checks under module NodeNext and moduleResolution Bundler, declarations included', ({ skip }) => {
    if (!installed) return skip();
    const build = run('npm', ['run', '--silent', 'build'], app);
    expect(build.stdout + build.stderr).toBe('');
    expect(build.status).toBe(0);
    expect(existsSync(join(app, 'dist/server.js'))).toBe(true);
  });

  it("starts; its own /healthz, sign-in and websocket route answer, and the plugin's routes under /e2ee", async ({ skip }) => {
    if (!installed) return skip();
    expect(scripts().start).toBe('node dist/server.js');
    server = await start(app, scripts().start!, {
      PATH: process.env.PATH,
      DATABASE_URL: databaseUrl,
      APP_KEY: keys.APP_KEY,
      ORG_KEY: keys.ORG_KEY,
      AUTH_JWT_SECRET: JWT_SECRET,
      PORT: '0',
    });
    const get = (path: string, identity?: string) => fetch(server!.url + path, { headers: identity ? { authorization: `Bearer ${token(identity)}` } : {} });

    expect(await get('/healthz').then((r) => r.json())).toEqual({ status: 'ok', service: 'acme-chat' });
    expect((await get('/api/messages')).status).toBe(401);
    expect(await get('/api/messages', 'alice').then((r) => r.json())).toEqual({ identity: 'alice', messages: APP_MESSAGES });
    const socket = new WebSocket(`${server.url.replace('http', 'ws')}/live`, { headers: { authorization: `Bearer ${token('bob')}` } });
    const [greeting] = (await once(socket, 'message')) as [Buffer];
    expect(String(greeting)).toBe('hello bob');
    socket.close();

    expect(await get(PREFIX + ApiPath.healthz).then((r) => r.json())).toEqual({ status: 'ok' });
    expect(await get(PREFIX + ApiPath.readyz).then((r) => r.json())).toEqual({ status: 'ready', store: 'postgres' });
    expect(await get(PREFIX + ApiPath.appKey).then((r) => r.json())).toMatchObject({ publicKey: keys.appPublicKey });
    expect((await get(ApiPath.appKey)).status).toBe(404);
    // The plugin takes the app's JWTs, and only those.
    const forged = await fetch(server.url + PREFIX + ApiPath.twilioToken, { headers: { authorization: `Bearer ${token('alice', randomBytes(32).toString('hex'))}` } });
    expect(forged.status).toBe(401);
    expect(await get(PREFIX + ApiPath.twilioToken, 'alice').then((r) => r.json())).toMatchObject({ mode: 'local', relayUrl: `${server.url.replace('http', 'ws')}${PREFIX}${ApiPath.relay}` });
  });

  it('carries alice’s message to bob, verified, through a client bundled by esbuild', async ({ skip }) => {
    if (!installed) return skip();
    expect(server, 'the app is running').toBeDefined();
    const bundled = run('npm', ['run', '--silent', 'build:client'], app);
    expect(bundled.status, bundled.stderr).toBe(0);
    // One file: run it where no node_modules can help.
    const elsewhere = join(work, 'elsewhere');
    mkdirSync(elsewhere);
    copyFileSync(join(app, 'public/chat.mjs'), join(elsewhere, 'chat.mjs'));
    const chat = run(process.execPath, ['chat.mjs'], elsewhere, {
      PATH: process.env.PATH,
      E2EE_URL: server!.url + PREFIX,
      APP_PUBLIC_KEY: keys.appPublicKey,
      ORG_PUBLIC_KEY: keys.orgPublicKey,
      KEYS_DIR: join(elsewhere, 'keys'),
      ALICE_TOKEN: token('alice'),
      BOB_TOKEN: token('bob'),
      TEXT,
    });
    expect(chat.stderr).toBe('');
    expect(JSON.parse(chat.stdout)).toEqual({ conversationSid: expect.stringMatching(/^CH/), author: 'alice', body: TEXT, e2ee: 'verified' });
    expect(existsSync(join(elsewhere, 'keys/alice.json')) && existsSync(join(elsewhere, 'keys/bob.json'))).toBe(true);
  });

  it("leaves the app's tables as they were; the plugin's are in the schema twilio_e2ee, the message sealed", async ({ skip }) => {
    if (!installed) return skip();
    const tables = await sql<{ schema: string; name: string }>(
      databaseUrl,
      `SELECT table_schema AS schema, table_name AS name FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2`,
    );
    expect(tables.filter((t) => t.schema === 'public').map((t) => t.name)).toEqual(['messages', 'schema_migrations']);
    expect(tables.filter((t) => t.schema !== 'public')).toEqual(
      expect.arrayContaining(['cards', 'messages', 'history', 'twilio_e2ee_migrations'].map((name) => ({ schema: 'twilio_e2ee', name }))),
    );
    expect(await sql(databaseUrl, 'SELECT id, author, body FROM public.messages ORDER BY id')).toEqual(APP_MESSAGES);
    expect((await sql<{ version: string }>(databaseUrl, 'SELECT version FROM public.schema_migrations ORDER BY 1')).map((r) => r.version)).toEqual(APP_MIGRATIONS);
    // The relay kept alice's message, sealed: its text appears nowhere in the row.
    const relayed = await sql<{ row: string }>(databaseUrl, 'SELECT m::text AS row FROM twilio_e2ee.messages m');
    expect(relayed).toHaveLength(1);
    expect(relayed[0]!.row).not.toContain(TEXT);
  });
});
