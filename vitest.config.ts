import { randomInt } from 'node:crypto';
import { defineConfig } from 'vitest/config';

// One fast-check seed for the whole run (test/support/fast-check.ts): FC_SEED=<seed> replays it.
// Kept in the environment because vitest evaluates this file again for each project.
if (!process.env.FC_SEED) {
  process.env.FC_SEED = String(randomInt(2 ** 31));
  console.log(`fast-check seed ${process.env.FC_SEED} (FC_SEED=${process.env.FC_SEED} replays this run)`);
}
const FC_SEED = process.env.FC_SEED;

/** The kinds of test, one vitest project each: `npm test -- <kind>` runs one (test/support/run-tests.mjs). */
const KINDS = {
  unit: ['test/shared/**/*.test.ts'],
  server: ['test/server/**/*.test.ts'],
  client: ['test/client/**/*.test.ts'],
  security: ['test/security/**/*.test.ts'],
  browser: ['test/browser/**/*.test.ts'],
  build: ['test/*.test.ts'],
};

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // expect.poll waits for what a page or a peer does next; on 2 busy cores that takes more than the default second.
    expect: { poll: { timeout: 10_000 } },
    env: { FC_SEED },
    setupFiles: ['test/support/fast-check.ts'],
    // The long suite (test/long) has its own configuration: npm run test:long.
    projects: Object.entries(KINDS).map(([name, include]) => ({ extends: true, test: { name, include } })),
  },
});
