/** Timing and summary statistics for the benchmarks. */

/** Milliseconds elapsed while fn runs (process.hrtime: nanosecond resolution, monotonic). */
export function timeMs(fn: () => unknown): number {
  const start = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

export async function timeMsAsync(fn: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

/** The q-quantile (0..1) of the values, linear interpolation between order statistics. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) throw new Error('quantile of no values');
  const sorted = [...values].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

export interface Summary {
  median: number;
  p25: number;
  p75: number;
  runs: number;
}

export function summarize(values: readonly number[]): Summary {
  return { median: median(values), p25: quantile(values, 0.25), p75: quantile(values, 0.75), runs: values.length };
}

/**
 * Times `subject` and `floor` alternately (after `warmup` untimed rounds of each), so drift in
 * machine load affects both alike; returns the samples of each in milliseconds.
 */
export function interleaved(subject: () => unknown, floor: () => unknown, runs: number, warmup: number): { subject: number[]; floor: number[] } {
  for (let i = 0; i < warmup; i++) {
    subject();
    floor();
  }
  const out = { subject: [] as number[], floor: [] as number[] };
  for (let i = 0; i < runs; i++) {
    // Alternate the order too, so neither always runs right after the other's garbage.
    if (i % 2 === 0) {
      out.subject.push(timeMs(subject));
      out.floor.push(timeMs(floor));
    } else {
      out.floor.push(timeMs(floor));
      out.subject.push(timeMs(subject));
    }
  }
  return out;
}

/** Rounds for JSON and tables: 3 significant digits below 100, integers above. */
export function round(value: number): number {
  if (!Number.isFinite(value)) return value;
  if (Math.abs(value) >= 100) return Math.round(value);
  return Number(value.toPrecision(3));
}
