/**
 * autocannon 8 (the package ships no types), loaded with require and typed here for the part of
 * its programmatic API the long load test and the benchmarks use (node_modules/autocannon/README.md,
 * "API"). A module, not an ambient `declare module`, so it cannot clash with another declaration
 * of the package.
 */
import { createRequire } from 'node:module';

export interface Request {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
}
export interface RequestSpec extends Request {
  /** Returns the request to send (falsy: restart from the first request). */
  setupRequest?: (request: Request, context: Record<string, unknown>) => Request | null | undefined;
  onResponse?: (status: number, body: string, context: Record<string, unknown>, headers: Record<string, string | string[]>) => void;
}
export interface Options {
  url: string;
  connections?: number;
  duration?: number;
  amount?: number;
  timeout?: number;
  /** Milliseconds between samples; also how late autocannon notices the end of an `amount` run. */
  sampleInt?: number;
  pipelining?: number;
  requests?: RequestSpec[];
  headers?: Record<string, string>;
}
export interface Histogram {
  average: number;
  mean: number;
  stddev: number;
  min: number;
  max: number;
  total: number;
  p50: number;
  p90: number;
  p97_5: number;
  p99: number;
  p99_9: number;
}
export interface Result {
  duration: number;
  requests: Histogram & { sent: number };
  latency: Histogram;
  throughput: Histogram;
  errors: number;
  timeouts: number;
  mismatches: number;
  non2xx: number;
  resets: number;
  '1xx': number;
  '2xx': number;
  '3xx': number;
  '4xx': number;
  '5xx': number;
  statusCodeStats: Record<string, { count: number }>;
}
export interface Instance extends PromiseLike<Result> {
  on(event: 'reqError', listener: (error: Error) => void): this;
  on(event: 'response', listener: (client: unknown, statusCode: number, resBytes: number, responseTime: number) => void): this;
  on(event: string, listener: (...args: unknown[]) => void): this;
  stop(): void;
}

export type Autocannon = (options: Options) => Instance;

export const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;
