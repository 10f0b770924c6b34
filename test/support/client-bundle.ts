/**
 * twilio-e2ee/client bundled for browsers as an app's bundler would: esbuild, platform browser,
 * ESM, minified, nothing external, no aliases or shims. Code splitting only separates what loads
 * on demand: the Twilio SDK, which connect() imports in Twilio mode (an app that wraps its own
 * `new Client(token)` bundles the SDK itself). Used by test/client-bundle.test.ts and the bench.
 */
import { builtinModules } from 'node:module';
import { relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build, type BuildFailure, type BuildResult, type Message } from 'esbuild';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const OUT_DIR = 'bundle'; // never written: write is false

/** Packages that only work in Node, beside its built-in modules. */
const NODE_ONLY_PACKAGES = ['ws'];
const NODE_BUILTINS = new Set(builtinModules.filter((name) => !name.startsWith('_')));

export interface BundleFile {
  /** Relative to the bundle's directory, e.g. "index.js". */
  name: string;
  bytes: number;
  gzipBytes: number;
  /** The npm packages bundled into this file. */
  packages: string[];
}

export interface ClientBundle {
  /** What a page loads up front: the entry and the chunks it imports statically. */
  initial: BundleFile[];
  /** gzip bytes of `initial`, each file compressed on its own as a server sends it. */
  initialGzipBytes: number;
  /** Chunks reached only through a dynamic import(). */
  lazy: BundleFile[];
  /** libsodium's part of initialGzipBytes: how much smaller the bundle is without it. */
  libsodiumGzipBytes: number;
  /** Node built-ins and Node-only packages found in the output, its inputs or the bundler's messages. */
  nodeOnly: string[];
  /** The bundler's errors and warnings, as it prints them. */
  messages: string[];
}

type Built = BuildResult<{ metafile: true; write: false }>;

/** A module name that cannot work in a browser: node:*, a Node built-in or a Node-only package. */
function isNodeOnly(specifier: string): boolean {
  const name = specifier.replace(/^node:/, '').split('/')[0]!;
  return specifier.startsWith('node:') || NODE_BUILTINS.has(name) || NODE_ONLY_PACKAGES.includes(name);
}

/** The npm package an input file belongs to, for inputs under node_modules. */
function packageOf(input: string): string | undefined {
  return /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input)?.[1];
}

async function bundle(entry: string, external: string[]): Promise<{ built?: Built; errors: Message[]; warnings: Message[] }> {
  try {
    const built = await build({
      absWorkingDir: ROOT,
      entryPoints: [entry],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      minify: true,
      splitting: true,
      outdir: OUT_DIR,
      external,
      write: false,
      metafile: true,
      logLevel: 'silent',
    });
    return { built, errors: built.errors, warnings: built.warnings };
  } catch (err) {
    const failure = err as BuildFailure;
    if (!failure.errors) throw err;
    return { errors: failure.errors, warnings: failure.warnings };
  }
}

/** The files a page loads up front (the entry and its static imports) and the lazy ones, with their sizes. */
function files(built: Built, entry: string): { initial: BundleFile[]; lazy: BundleFile[] } {
  const outputs = built.metafile.outputs;
  const sized = new Map<string, BundleFile>();
  for (const file of built.outputFiles) {
    const path = relative(ROOT, file.path);
    const packages = new Set(Object.keys(outputs[path]?.inputs ?? {}).flatMap((input) => packageOf(input) ?? []));
    sized.set(path, { name: relative(OUT_DIR, path), bytes: file.contents.length, gzipBytes: gzipSync(file.contents).length, packages: [...packages].sort() });
  }
  const initial = new Set<string>();
  const visit = (path: string) => {
    if (initial.has(path)) return;
    initial.add(path);
    for (const imported of outputs[path]?.imports ?? []) if (imported.kind === 'import-statement') visit(imported.path);
  };
  // Each dynamic import() is an entry point of its own in the metafile: start from ours only.
  for (const [path, output] of Object.entries(outputs)) if (output.entryPoint === entry) visit(path);
  const all = [...sized.entries()];
  return { initial: all.filter(([p]) => initial.has(p)).map(([, f]) => f), lazy: all.filter(([p]) => !initial.has(p)).map(([, f]) => f) };
}

const gzipTotal = (list: BundleFile[]) => list.reduce((sum, f) => sum + f.gzipBytes, 0);

/** Bundles `entry` (default client/index.ts, the twilio-e2ee/client entry) for browsers. */
export async function bundleClient(entry = 'client/index.ts'): Promise<ClientBundle> {
  entry = relative(ROOT, resolve(ROOT, entry));
  const { built, errors, warnings } = await bundle(entry, []);
  const nodeOnly = new Set<string>();
  const messages: string[] = [];
  for (const [kind, list] of [['error', errors], ['warning', warnings]] as const) {
    for (const m of list) {
      messages.push(`${kind}: ${m.text}${m.location ? ` (${m.location.file}:${m.location.line})` : ''}`);
      for (const [, name] of m.text.matchAll(/"([^"]+)"/g)) if (isNodeOnly(name!)) nodeOnly.add(name!);
    }
  }
  if (!built) return { initial: [], initialGzipBytes: 0, lazy: [], libsodiumGzipBytes: 0, nodeOnly: [...nodeOnly].sort(), messages };

  // What the output still imports at run time (esbuild leaves a require() it cannot resolve inside a try block).
  for (const output of Object.values(built.metafile.outputs)) for (const { path, external } of output.imports) if (external && isNodeOnly(path)) nodeOnly.add(path);
  // A Node-only package with a "browser" stub (ws has one) bundles without a message: find it among the inputs.
  for (const input of Object.keys(built.metafile.inputs)) {
    const pkg = packageOf(input);
    if (pkg && NODE_ONLY_PACKAGES.includes(pkg)) nodeOnly.add(pkg);
  }
  const { initial, lazy } = files(built, entry);
  const withoutSodium = (await bundle(entry, ['libsodium-wrappers'])).built;
  if (!withoutSodium) throw new Error(`${entry} bundles, but not with libsodium left out`);
  const sodiumFree = gzipTotal(files(withoutSodium, entry).initial);
  return { initial, initialGzipBytes: gzipTotal(initial), lazy, libsodiumGzipBytes: gzipTotal(initial) - sodiumFree, nodeOnly: [...nodeOnly].sort(), messages };
}
