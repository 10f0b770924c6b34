/** Waiting and fan-out for tests and benchmarks: events, conditions, bounded parallel work. */

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves with the next `count` values an emitter passes to `event`. */
export function nextEvents<T>(emitter: { on(e: string, l: (v: T) => void): unknown; off(e: string, l: (v: T) => void): unknown }, event: string, count = 1, timeoutMs = 5000): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const got: T[] = [];
    const timer = setTimeout(() => {
      emitter.off(event, listener);
      reject(new Error(`timed out waiting for ${count} "${event}" events (got ${got.length})`));
    }, timeoutMs);
    const listener = (value: T) => {
      got.push(value);
      if (got.length === count) {
        clearTimeout(timer);
        emitter.off(event, listener);
        resolve(got);
      }
    };
    emitter.on(event, listener);
  });
}

/** Polls `predicate` until it holds, or fails after `timeoutMs`. */
export async function waitFor(predicate: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

/** Runs `work` on every item with at most `limit` at a time; resolves with the results in item order. */
export async function inParallel<T, R>(items: readonly T[], limit: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await work(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
