/** Runs autocannon against a loopback server, bounded in time, and summarizes what came back. */
import autocannon, { type AutocannonOptions, type AutocannonResult } from 'autocannon';
import { round } from './stats.js';

export interface LoadResult {
  /** Successful (2xx) responses per second over the run. */
  perSec: number;
  requests: number;
  non2xx: number;
  errors: number;
  seconds: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  statusCodes: Record<string, number>;
}

/**
 * One autocannon run. `maxSeconds` bounds it even when it is driven by `amount` (a watchdog stops
 * the instance), so every scenario ends by itself.
 */
export async function load(options: AutocannonOptions, maxSeconds: number): Promise<LoadResult> {
  const instance = autocannon({ timeout: 30, ...options });
  const watchdog = setTimeout(() => instance.stop(), maxSeconds * 1000);
  let result: AutocannonResult;
  try {
    result = await instance;
  } finally {
    clearTimeout(watchdog);
  }
  const ok = result['2xx'];
  const statusCodes = Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([code, s]) => [code, Number(s.count)]));
  return {
    perSec: round(ok / result.duration),
    requests: ok + result.non2xx,
    non2xx: result.non2xx,
    errors: result.errors,
    seconds: round(result.duration),
    latencyMs: { p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, max: result.latency.max },
    statusCodes,
  };
}

/** Throws when a run had failures: a benchmark of error responses measures nothing. */
export function requireClean(name: string, result: LoadResult): LoadResult {
  if (result.non2xx > 0 || result.errors > 0) {
    throw new Error(`${name}: ${result.non2xx} non-2xx responses and ${result.errors} errors (status codes ${JSON.stringify(result.statusCodes)})`);
  }
  return result;
}
