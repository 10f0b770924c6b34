#!/usr/bin/env node
/**
 * The package's command, `twilio-e2ee` (package.json "bin"): `npx twilio-e2ee keygen`, `start`,
 * `migrate`, `rewrap-history` and `witness` in an app that installed the package. Each command is loaded only
 * when asked for, so `keygen` runs where only the client's packages are installed.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const COMMANDS: Record<string, { about: string; run: (args: string[]) => Promise<unknown>; takesArgs?: boolean }> = {
  keygen: { about: 'print fresh APP_KEY and ORG_KEY lines for .env, and the public keys clients pin', run: () => import('./keygen.js') },
  start: { about: 'run the standalone server: reads .env in this directory (docs/API.md "Running it")', run: () => import('./main.js') },
  migrate: { about: 'bring the store\'s tables up to date and exit, a deploy step (docs/API.md "Database and migrations")', run: () => import('./migrate.js') },
  'rewrap-history': {
    about: 'move organization history to ORG_KEY from the keys in ORG_KEY_PREVIOUS (docs/API.md "Rotating keys")',
    run: () => import('./rewrap-history-main.js'),
  },
  witness: {
    about: 'a transparency log witness: `witness keygen <name>`, `witness init`, `witness` (docs/API.md "Running a witness")',
    takesArgs: true,
    run: async (args) => {
      process.exitCode = await (await import('./witness/main.js')).witnessCommand(args);
    },
  },
};

interface PackageJson {
  name: string;
  version: string;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}

/** This package's package.json: beside server/ in the repository, two levels up from dist/server/. */
function ownPackage(): PackageJson {
  for (const up of ['../package.json', '../../package.json']) {
    const path = fileURLToPath(new URL(up, import.meta.url));
    if (!existsSync(path)) continue;
    const pkg = JSON.parse(readFileSync(path, 'utf8')) as PackageJson;
    if (pkg.name === 'twilio-e2ee') return pkg;
  }
  throw new Error('twilio-e2ee: package.json not found beside the command');
}

/** The npm command that installs the server's packages: the optional peer dependencies. */
function serverInstallCommand(pkg: PackageJson): string {
  const optional = Object.entries(pkg.peerDependencies ?? {}).filter(([name]) => pkg.peerDependenciesMeta?.[name]?.optional);
  const specs = optional.filter(([name]) => name !== 'pg').map(([name, range]) => `${name}@${range}`);
  return `npm install ${specs.join(' ')}\n(pg@${pkg.peerDependencies?.pg} in place of better-sqlite3 for PostgreSQL)`;
}

function usage(pkg: PackageJson): string {
  const width = Math.max(...Object.keys(COMMANDS).map((name) => name.length));
  return [
    `twilio-e2ee ${pkg.version}`,
    '',
    'Usage: npx twilio-e2ee <command>',
    '',
    ...Object.entries(COMMANDS).map(([name, { about }]) => `  ${name.padEnd(width)}  ${about}`),
    '',
  ].join('\n');
}

const pkg = ownPackage();
const [name, ...rest] = process.argv.slice(2);
if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
  process.stdout.write(usage(pkg));
} else if (name === '--version' || name === '-v') {
  process.stdout.write(`${pkg.version}\n`);
} else if (!Object.hasOwn(COMMANDS, name) || (rest.length > 0 && !COMMANDS[name]!.takesArgs)) {
  process.stderr.write(`twilio-e2ee: ${Object.hasOwn(COMMANDS, name) ? `${name} takes no arguments` : `unknown command "${name}"`}\n\n${usage(pkg)}`);
  process.exitCode = 2;
} else {
  try {
    await COMMANDS[name]!.run(rest);
  } catch (err) {
    // The server's packages are optional peer dependencies: a client-only install lacks them.
    if ((err as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw err;
    process.stderr.write(
      `twilio-e2ee ${name}: ${(err as Error).message}\n` +
        `The server's packages are peer dependencies of twilio-e2ee, not installed with it. Install them with:\n` +
        `${serverInstallCommand(pkg)}\n`,
    );
    process.exitCode = 1;
  }
}
