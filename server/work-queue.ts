/**
 * A small queue bounding how much of one kind of work runs at once (history pages: CPU-bound
 * rewraps). At most `atOnce` tasks run; at most `maxWaiting` more wait for a turn, in order.
 */
export class WorkQueue {
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(
    private readonly atOnce: number,
    private readonly maxWaiting: number,
  ) {}

  /** Runs `task` in its turn; throws `whenFull()` at once when the queue is full. */
  async run<T>(task: () => Promise<T>, whenFull: () => Error): Promise<T> {
    if (this.running < this.atOnce) {
      this.running++;
    } else {
      if (this.waiting.length >= this.maxWaiting) throw whenFull();
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
    try {
      return await task();
    } finally {
      // Hand the slot to the next waiting task, or free it.
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }
}
