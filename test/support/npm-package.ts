/**
 * The package as npm delivers it, for the tests that install it into apps outside the repository
 * (test/package-install.test.ts, test/adoption.test.ts): the working tree packed with `npm pack`
 * (its `prepare` script builds dist/), and `npm install` in temporary apps, from npm's cache when
 * it holds everything (`--offline`), else from the registry (`--prefer-offline`).
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));

export const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  peerDependencies: Record<string, string>;
  peerDependenciesMeta: Record<string, { optional?: boolean }>;
};
/** The lowest Fastify the peer range allows (a range of the form ^x.y.z). */
export const LOWEST_FASTIFY = /^\^(\d+\.\d+\.\d+)$/.exec(pkg.peerDependencies.fastify ?? '')?.[1];
/** npm's answers when it can reach neither its cache nor the registry. */
export const UNREACHABLE = /ENOTCACHED|ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|ENETUNREACH/;

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function run(command: string, args: string[], cwd: string, env?: NodeJS.ProcessEnv): RunResult {
  const result = spawnSync(command, args, { cwd, env, encoding: 'utf8', timeout: 150_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** One `npm install` of `specs` in `dir`; `mode` is --offline or --prefer-offline. */
export function npmInstallWith(mode: '--offline' | '--prefer-offline', dir: string, specs: string[], flags: string[] = []): RunResult {
  return run('npm', ['install', mode, '--no-audit', '--no-fund', ...flags, ...specs], dir);
}

/**
 * `npm install` in `dir`, offline from the cache first, then letting npm reach the registry for
 * what the cache lacks. Returns false when npm could reach neither (outside CI, with a warning);
 * throws on any other failure, and on that one under CI=true.
 */
export function npmInstall(dir: string, specs: string[], flags: string[] = []): boolean {
  let stderr = '';
  for (const mode of ['--offline', '--prefer-offline'] as const) {
    const result = npmInstallWith(mode, dir, specs, flags);
    if (result.status === 0) return true;
    stderr = result.stderr;
    if (!UNREACHABLE.test(stderr)) break;
  }
  if (UNREACHABLE.test(stderr) && process.env.CI !== 'true') {
    console.warn(`npm reaches neither its cache nor the registry: skipping (CI=true makes this fail)\n${stderr}`);
    return false;
  }
  throw new Error(`npm install ${specs.join(' ')} failed in ${dir}:\n${stderr}`);
}

/** A directory `work/name` with an app's package.json (ES modules). */
export function newApp(work: string, name: string): string {
  const dir = join(work, name);
  mkdirSync(dir);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name, version: '1.0.0', private: true, type: 'module' }));
  return dir;
}

/**
 * The working tree packed as `npm publish` would: copied to `work/source` (its own dist/, so the
 * build there leaves the repository's alone) with the repository's node_modules for the build
 * tools, then `npm pack`. Returns the tarball's path and the files in it.
 */
export function packWorkingTree(work: string): { tarball: string; files: string[] } {
  const source = join(work, 'source');
  cpSync(ROOT, source, { recursive: true, filter: (path) => !/(^|\/)(node_modules|\.git|dist|\.data|test|bench)$/.test(relative(ROOT, path)) });
  symlinkSync(join(ROOT, 'node_modules'), join(source, 'node_modules'), 'dir');
  const packed = run('npm', ['pack', '--json', '--pack-destination', work], source);
  if (packed.status !== 0) throw new Error(`npm pack failed:\n${packed.stderr}`);
  const [info] = JSON.parse(packed.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
  return { tarball: join(work, info!.filename), files: info!.files.map((f) => f.path) };
}

/** The version of `name` in the repository's node_modules. */
export function installedVersion(name: string): string {
  return (JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
}

/**
 * The repository's installed copy of `name` packed into tarballs in `work` (`npm pack
 * node_modules/<name>`), with those of its optional dependencies installed beside it (the
 * platform binaries of typescript and esbuild): an app installs the very version the repository
 * uses without npm's cache or the registry.
 */
export function packInstalled(work: string, name: string): string[] {
  const manifest = JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { optionalDependencies?: Record<string, string> };
  const present = Object.keys(manifest.optionalDependencies ?? {}).filter((dep) => existsSync(join(ROOT, 'node_modules', dep, 'package.json')));
  return [name, ...present].map((dir) => {
    const packed = run('npm', ['pack', '--json', '--pack-destination', work, join(ROOT, 'node_modules', dir)], work);
    if (packed.status !== 0) throw new Error(`npm pack node_modules/${dir} failed:\n${packed.stderr}`);
    return join(work, (JSON.parse(packed.stdout) as Array<{ filename: string }>)[0]!.filename);
  });
}

/**
 * README's install command for a server app (`npm install twilio-e2ee fastify@… …`) as specs:
 * the packed `tarball` for twilio-e2ee and Fastify at the lowest version the peer range allows.
 */
export function readmeServerInstall(tarball: string): string[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const command = /^npm install (twilio-e2ee fastify@.*)$/m.exec(readme)?.[1];
  if (!command) throw new Error('README has no `npm install twilio-e2ee fastify@…` line');
  if (!LOWEST_FASTIFY) throw new Error('peerDependencies.fastify is not of the form ^x.y.z');
  return command.split(/\s+/).map((spec) => (spec === 'twilio-e2ee' ? tarball : spec.startsWith('fastify@') ? `fastify@${LOWEST_FASTIFY}` : spec));
}
