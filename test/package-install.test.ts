/**
 * The package as a team installs it (issue "Adoption", "Installing"): the working tree packed
 * with `npm pack` (its `prepare` script builds dist/), then installed from the tarball into
 * temporary apps, from the npm cache when it holds everything (`--offline`), else from the
 * registry (`--prefer-offline`).
 * - A client-only app gets none of the server's packages and imports twilio-e2ee/client.
 * - `npx twilio-e2ee keygen` prints APP_KEY and ORG_KEY lines there; `start` names what to install.
 * - A server app installed with README's command, Fastify at the lowest version the peer range
 *   allows, has one fastify, type-checks README's server snippet, and runs `serverOptions`.
 * Where neither the cache nor the registry can be had it skips, except under CI=true (fails).
 * Takes under a minute (15 s with npm's cache warm).
 */
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOWEST_FASTIFY, ROOT, installedVersion, newApp as newAppIn, npmInstall, packWorkingTree, pkg, readmeServerInstall, run } from './support/npm-package.js';

const README = readFileSync('README.md', 'utf8');
/** The server's packages: what a client-only app must not get. */
const SERVER_PACKAGES = Object.keys(pkg.peerDependencies).filter((name) => pkg.peerDependenciesMeta[name]?.optional);

const work = mkdtempSync(join(tmpdir(), 'twilio-e2ee-install-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const newApp = (name: string): string => newAppIn(work, name);

/** Every copy of package `name` under a node_modules tree (nested ones included). */
function copiesOf(nodeModules: string, name: string): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    if (existsSync(join(dir, name, 'package.json'))) found.push(join(dir, name));
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      const scope = entry.name.startsWith('@') ? readdirSync(join(dir, entry.name)).map((n) => join(entry.name, n)) : [entry.name];
      for (const pkgDir of scope) if (existsSync(join(dir, pkgDir, 'node_modules'))) walk(join(dir, pkgDir, 'node_modules'));
    }
  };
  walk(nodeModules);
  return found;
}

/** Bytes of the files under `dir` and the number of packages (directories with a package.json one level below a node_modules). */
function measure(dir: string): { bytes: number; packages: number } {
  let bytes = 0;
  let packages = 0;
  const walk = (path: string) => {
    for (const entry of readdirSync(path, { withFileTypes: true })) {
      const child = join(path, entry.name);
      if (entry.isDirectory()) {
        if (existsSync(join(child, 'package.json')) && /node_modules(\/@[^/]+)?$/.test(path)) packages += 1;
        walk(child);
      } else {
        bytes += lstatSync(child).size;
      }
    }
  };
  walk(dir);
  return { bytes, packages };
}

/** README's server snippet: the TypeScript block that imports twilio-e2ee/server. */
function readmeServerSnippet(): string {
  const block = [...README.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!).find((code) => code.includes("from 'twilio-e2ee/server'"));
  if (!block) throw new Error('README has no TypeScript block importing twilio-e2ee/server');
  return block;
}

let tarball = '';

beforeAll(() => {
  const packed = packWorkingTree(work);
  tarball = packed.tarball;
  const files = packed.files;
  expect(files).toEqual(expect.arrayContaining(['package.json', 'README.md', 'dist/server/cli.js', 'dist/client/index.js', 'dist/client/index.d.ts', 'dist/server/index.js']));
  expect(files.filter((f) => !/^(dist|docs)\/|^(package\.json|README\.md|LICENSE)$/.test(f) || f.endsWith('.map'))).toEqual([]);
}, 120_000);

describe('a client-only app', () => {
  let app = '';
  let installed = false;
  beforeAll(() => {
    app = newApp('client-app');
    installed = npmInstall(app, [tarball]);
  }, 150_000);

  it('gets none of the server packages and imports twilio-e2ee/client', ({ skip }) => {
    if (!installed) return skip();
    const nodeModules = join(app, 'node_modules');
    for (const name of SERVER_PACKAGES) expect(copiesOf(nodeModules, name), name).toEqual([]);
    // The wrapped SDK is a peer dependency: npm installs it beside the app's code, once.
    expect(copiesOf(nodeModules, '@twilio/conversations')).toHaveLength(1);
    const { bytes, packages } = measure(nodeModules);
    console.log(`client-only app: ${packages} packages, ${(bytes / 1e6).toFixed(1)} MB of files in node_modules`);

    const script = `
      const client = await import('twilio-e2ee/client');
      const node = await import('twilio-e2ee/client/node');
      console.log(JSON.stringify({ wrap: typeof client.wrap, E2EEClient: typeof client.E2EEClient, FileKeyStore: typeof node.FileKeyStore }));`;
    const imported = run(process.execPath, ['--input-type=module', '-e', script], app);
    expect(imported.stderr).toBe('');
    expect(JSON.parse(imported.stdout)).toEqual({ wrap: 'function', E2EEClient: 'function', FileKeyStore: 'function' });
  });

  it('runs `npx twilio-e2ee keygen`', ({ skip }) => {
    if (!installed) return skip();
    // --no: never a package of that name from the registry, only the installed command.
    const keygen = run('npx', ['--no', 'twilio-e2ee', 'keygen'], app);
    expect(keygen.status, keygen.stderr).toBe(0);
    expect(keygen.stdout).toMatch(/^APP_KEY=[\w-]{43}$/m);
    expect(keygen.stdout).toMatch(/^ORG_KEY=[\w-]{43}$/m);
  });

  it('says which packages `npx twilio-e2ee start` needs', ({ skip }) => {
    if (!installed) return skip();
    const start = run('npx', ['--no', 'twilio-e2ee', 'start'], app);
    expect(start.status).toBe(1);
    expect(start.stderr).toContain("The server's packages are peer dependencies of twilio-e2ee");
    expect(start.stderr).toContain(`npm install fastify@${pkg.peerDependencies.fastify}`);
  });
});

describe(`a server app on Fastify ${LOWEST_FASTIFY}, the lowest the peer range allows`, () => {
  let app = '';
  let installed = false;
  beforeAll(() => {
    expect(LOWEST_FASTIFY, 'peerDependencies.fastify is ^x.y.z').toBeDefined();
    app = newApp('server-app');
    // README's command, with the app's Fastify pinned low; no install scripts (better-sqlite3's
    // native build is not what is checked here).
    const specs = readmeServerInstall(tarball);
    installed = npmInstall(app, [...specs, `@types/node@${installedVersion('@types/node')}`], ['--ignore-scripts']);
  }, 150_000);

  it('has one fastify, and README’s server snippet type-checks (tsc, NodeNext)', ({ skip }) => {
    if (!installed) return skip();
    const fastifies = copiesOf(join(app, 'node_modules'), 'fastify');
    expect(fastifies.map((dir) => relative(app, dir))).toEqual(['node_modules/fastify']);
    expect((JSON.parse(readFileSync(join(fastifies[0]!, 'package.json'), 'utf8')) as { version: string }).version).toBe(LOWEST_FASTIFY);

    writeFileSync(join(app, 'server.ts'), readmeServerSnippet());
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, skipLibCheck: true, noEmit: true, types: ['node'] }, files: ['server.ts'] }),
    );
    const tsc = run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', app], app);
    expect(tsc.stdout + tsc.stderr).toBe('');
    expect(tsc.status).toBe(0);
  });

  it('loads twilio-e2ee/server on this Node and runs apps made from serverOptions', ({ skip }) => {
    if (!installed) return skip();
    // twilio-e2ee/server loads @fastify/static (content-disposition) and inject loads
    // light-my-request (cookie): ESM packages that declare Node >= 22, required from CommonJS.
    // Two instances: Fastify before 5.8 changed the routerOptions it was given, so the second
    // app answered 503. A path parameter over Fastify's default of 100 characters gets through.
    const script = `
      import Fastify from 'fastify';
      import { serverOptions } from 'twilio-e2ee/server';
      const answers = [];
      for (let i = 0; i < 2; i++) {
        const app = Fastify({ ...serverOptions });
        app.get('/items/:id', async (request) => ({ length: request.params.id.length }));
        answers.push((await app.inject({ url: '/items/' + 'a'.repeat(200) })).statusCode, (await app.inject({ url: '/nothing' })).statusCode);
        await app.close();
      }
      console.log(JSON.stringify({ node: process.version, answers }));`;
    const ran = run(process.execPath, ['--input-type=module', '-e', script], app);
    expect(ran.stderr).toBe('');
    expect(JSON.parse(ran.stdout)).toEqual({ node: process.version, answers: [200, 404, 200, 404] });
  });
});
