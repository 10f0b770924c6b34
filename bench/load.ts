/** Runs autocannon against a loopback server, bounded in time, and summarizes what came back. */
import { autocannon, type Options as AutocannonOptions, type RequestSpec, type Result as AutocannonResult } from '../test/support/autocannon.js';
import { round } from './stats.js';

/** One request of a run; autocannon cycles through them per connection. */
export type AutocannonRequest = RequestSpec;

export interface LoadResult {
  /** Successful (2xx) responses per second over the run. */
  perSec: number;
  requests: number;
  non2xx: number;
  errors: number;
  seconds: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  statusCodes: Record<string, number>;
  /**
   * The server process during the run: CPU (all its threads, % of one core) and how much of the
   * time its event loop was running rather than waiting for I/O (100% = saturated).
   */
  server?: { cpuPercent: number; loopBusyPercent: number; cpuUsPerRequest: number };
}

/** Something that reports the server process's cumulative use (bench/child.ts). */
export interface StatsSource {
  stats(): Promise<{ cpuUs: number; elu: { active: number; idle: number }; wallMs: number }>;
}

/**
 * One autocannon run. `maxSeconds` bounds it even when it is driven by `amount` (a watchdog stops
 * the instance), so every scenario ends by itself.
 */
export async function load(options: AutocannonOptions, maxSeconds: number, observe?: StatsSource): Promise<LoadResult> {
  const before = await observe?.stats();
  // sampleInt 10 ms: with the default (1 s) an `amount` run is noticed as finished only at the
  // next whole second, and the idle rest of that second would count in the rate.
  const instance = autocannon({ timeout: 30, sampleInt: 10, ...options });
  const watchdog = setTimeout(() => instance.stop(), maxSeconds * 1000);
  let result: AutocannonResult;
  try {
    result = await instance;
  } finally {
    clearTimeout(watchdog);
  }
  const after = await observe?.stats();
  const ok = result['2xx'];
  const server =
    before && after
      ? {
          cpuPercent: round(((after.cpuUs - before.cpuUs) / 1000 / (after.wallMs - before.wallMs)) * 100),
          loopBusyPercent: round(((after.elu.active - before.elu.active) / (after.elu.active - before.elu.active + after.elu.idle - before.elu.idle)) * 100),
          cpuUsPerRequest: round((after.cpuUs - before.cpuUs) / Math.max(1, ok + result.non2xx)),
        }
      : undefined;
  const statusCodes = Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([code, s]) => [code, Number(s.count)]));
  return {
    perSec: round(ok / result.duration),
    requests: ok + result.non2xx,
    non2xx: result.non2xx,
    errors: result.errors,
    seconds: round(result.duration),
    latencyMs: { p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, max: result.latency.max },
    statusCodes,
    ...(server ? { server } : {}),
  };
}

/** Throws when a run had failures: a benchmark of error responses measures nothing. */
export function requireClean(name: string, result: LoadResult): LoadResult {
  if (result.non2xx > 0 || result.errors > 0) {
    throw new Error(`${name}: ${result.non2xx} non-2xx responses and ${result.errors} errors (status codes ${JSON.stringify(result.statusCodes)})`);
  }
  return result;
}
