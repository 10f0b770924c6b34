/**
 * fast-check for every suite: one seed per run and capped run counts. vitest.config.ts picks the
 * seed (FC_SEED, else a random one it prints) and loads this file first in every test file;
 * fast-check names the seed and path of a failing case, and FC_SEED=<seed> replays the run.
 */
import fc from 'fast-check';

/** The deep run (npm run test:deep sets TEST_DEPTH=deep): every property takes its full count. */
export const DEEP = process.env.TEST_DEPTH === 'deep';

/** The most runs a property takes in the default run (fast-check's own default count). */
export const DEFAULT_RUNS_CAP = 100;

/** How many runs a property takes: `full` in the deep run, at most DEFAULT_RUNS_CAP otherwise. */
export function runs(full: number): number {
  return DEEP ? full : Math.min(full, DEFAULT_RUNS_CAP);
}

const seed = Number(process.env.FC_SEED);
if (Number.isSafeInteger(seed)) fc.configureGlobal({ seed });
