/**
 * The package's public entry points: after the build, `twilio-e2ee/shared`, `/client`,
 * `/client/node` and `/server` resolve to built JavaScript with type declarations beside it.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { beforeAll, expect, it } from 'vitest';

const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { exports: Record<string, { types: string; default: string }> };

beforeAll(() => {
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { stdio: 'pipe' });
}, 120_000);

it.each(['./shared', './client', './client/node', './server'])('%s resolves to built JavaScript with types', async (entry) => {
  const target = pkg.exports[entry]!;
  expect(existsSync(target.default)).toBe(true);
  expect(existsSync(target.types)).toBe(true);
  const module = (await import(`twilio-e2ee/${entry.slice(2)}`)) as Record<string, unknown>;
  const expected = { './shared': ['sealEnvelope', 'verifyCard', 'ErrorCode'], './client': ['E2EEClient', 'IndexedDbKeyStore', 'LocalConversationsClient'], './client/node': ['E2EEClient', 'FileKeyStore', 'LocalConversationsClient'], './server': ['twilioE2ee', 'buildApp', 'loadConfig', 'openStore'] }[entry]!;
  for (const name of expected) expect(module[name], name).toBeDefined();
});
