/**
 * What one card registration costs the embedded store, on disk (WAL, synchronous=FULL: a commit
 * waits for fsync, so an acknowledged card survives a power loss) and in memory (no fsync), in
 * the same temporary-directory filesystem the bench server uses. The difference is the price of
 * durability each POST /v1/cards pays on this machine.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore } from '../server/store/sqlite.js';
import { syntheticCard } from './fixtures.js';
import { round, summarize, timeMsAsync } from './stats.js';

export interface StoreCost {
  /** Microseconds per registerCard (median of batches). */
  diskUs: number;
  memoryUs: number;
  /** The fsync (commit) share: disk minus memory. */
  commitUs: number;
}


/** Both stores open at once and timed in alternating batches, so a slow spell of the disk shows in both orders alike. */
export async function benchStore(quick: boolean): Promise<StoreCost> {
  const dirs = [mkdtempSync(join(tmpdir(), 'e2ee-bench-store-')), mkdtempSync(join(tmpdir(), 'e2ee-bench-store-'))] as const;
  const disk = await openSqliteStore({ dataDir: dirs[0] });
  const memory = await openSqliteStore({ dataDir: dirs[1], filename: ':memory:' });
  try {
    const perBatch = 100;
    let n = 0;
    const batch = (store: typeof disk) => async () => {
      for (let i = 0; i < perBatch; i++) {
        const result = await store.registerCard(syntheticCard(n++, 'store', 20), { maxActivePerIdentity: 20, now: 1_760_000_000 });
        if (!result.ok) throw new Error(`store bench: ${result.reason}`);
      }
    };
    await batch(disk)();
    await batch(memory)();
    const samples = { disk: [] as number[], memory: [] as number[] };
    for (let b = 0; b < (quick ? 5 : 11); b++) {
      samples.disk.push(((await timeMsAsync(batch(disk))) * 1000) / perBatch);
      samples.memory.push(((await timeMsAsync(batch(memory))) * 1000) / perBatch);
    }
    const diskUs = summarize(samples.disk).median;
    const memoryUs = summarize(samples.memory).median;
    return { diskUs: round(diskUs), memoryUs: round(memoryUs), commitUs: round(diskUs - memoryUs) };
  } finally {
    await disk.close();
    await memory.close();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  }
}
