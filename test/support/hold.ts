/** Holding a real store call at a chosen moment, to play out one interleaving of concurrent requests. */
import { vi } from 'vitest';
import type { Store } from '../../server/store/types.js';

export interface HeldCall {
  /** Resolves when the call has been made (and is being held). */
  reached: Promise<void>;
  /** Lets the held call run, on the real store. */
  release(): void;
}

/** Holds the next `putHistory` on `store` until `release()`; later calls are not held. */
export function holdNextPut(store: Store): HeldCall {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let arrive!: () => void;
  const reached = new Promise<void>((resolve) => (arrive = resolve));
  const put = store.putHistory.bind(store);
  const spy = vi.spyOn(store, 'putHistory').mockImplementationOnce(async (record) => {
    arrive();
    await released;
    spy.mockRestore();
    return put(record);
  });
  return { reached, release };
}
