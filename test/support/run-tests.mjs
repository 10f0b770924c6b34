// `npm test -- <kind> ...` runs the vitest projects named (see vitest.config.ts), `--deep` the
// large property counts; any other argument goes to vitest as it is.
import { spawnSync } from 'node:child_process';

const KINDS = new Set(['unit', 'server', 'client', 'security', 'browser', 'build']);
const args = [];
const env = { ...process.env };
for (const arg of process.argv.slice(2)) {
  if (KINDS.has(arg)) args.push('--project', arg);
  else if (arg === '--deep') env.TEST_DEPTH = 'deep';
  else args.push(arg);
}
const result = spawnSync('vitest', ['run', ...args], { stdio: 'inherit', env });
process.exit(result.status ?? 1);
