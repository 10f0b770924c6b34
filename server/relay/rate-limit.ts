/**
 * Per-identity request budgets of the local relay: a fixed window of a minute per identity,
 * counted in this process, like the HTTP rate limits (server/rate-limits.ts).
 */
import { RATE_LIMIT_WINDOW_MS } from '../rate-limits.js';

export class RelayRateLimiter {
  private readonly windows = new Map<string, { startMs: number; count: number }>();
  private sweptAtMs = 0;

  /** `perMinute` = 0: no limit. */
  constructor(private readonly perMinute: number) {}

  /** Counts one request of `key`; returns 0 when allowed, else the ms until the window resets. */
  take(key: string, now = Date.now()): number {
    if (this.perMinute === 0) return 0;
    // Forget finished windows once a window, so identities that went quiet cost nothing.
    if (now - this.sweptAtMs >= RATE_LIMIT_WINDOW_MS) {
      for (const [k, w] of this.windows) if (now - w.startMs >= RATE_LIMIT_WINDOW_MS) this.windows.delete(k);
      this.sweptAtMs = now;
    }
    let window = this.windows.get(key);
    if (!window || now - window.startMs >= RATE_LIMIT_WINDOW_MS) this.windows.set(key, (window = { startMs: now, count: 0 }));
    if (window.count >= this.perMinute) return window.startMs + RATE_LIMIT_WINDOW_MS - now;
    window.count++;
    return 0;
  }
}
