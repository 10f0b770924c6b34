/**
 * Per-route rate limits (@fastify/rate-limit, registered by the plugin with `global: false`).
 * Counters live in each process: behind a load balancer with N instances the effective limit is
 * up to N times the configured one, which is acceptable for limits meant to stop floods.
 */
import type { FastifyRequest } from 'fastify';
import { E2EEError, ErrorCode } from '../shared/errors.js';
import type { RateLimitOptions } from '@fastify/rate-limit';

export const RATE_LIMIT_WINDOW_MS = 60_000;

/**
 * Route `config` with a limit of `perMinute` requests (none when 0), counted per client address
 * or, on authenticated routes, per identity (so users behind one NAT do not share a budget).
 * Per-identity limits run as a preHandler after `authenticate`.
 */
export function rateLimitConfig(perMinute: number, by: 'address' | 'identity'): { rateLimit?: RateLimitOptions } {
  if (perMinute === 0) return {};
  const rateLimit: RateLimitOptions = { max: perMinute, timeWindow: RATE_LIMIT_WINDOW_MS };
  if (by === 'identity') {
    rateLimit.hook = 'preHandler';
    rateLimit.keyGenerator = (request: FastifyRequest) => `identity:${request.e2eeIdentity}`;
  }
  return { rateLimit };
}

export function rateLimitError(_request: FastifyRequest, context: { after: string }): Error {
  return new E2EEError(ErrorCode.RATE_LIMITED, `rate limit exceeded, retry in ${context.after}`);
}
