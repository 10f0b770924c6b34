/**
 * The card service under load (autocannon on loopback against bench/server-child.ts):
 * registration against its ceiling route, and lookups. Every request is a real one: fresh cards
 * with their own keys and valid self-signatures, app tokens the server verifies.
 */
import { ApiPath } from '../shared/api.js';
import type { CardRequest, CardWire } from '../shared/card.js';
import { toB64u } from '../shared/encoding.js';
import type { BenchServer } from './child.js';
import { inParallel } from '../test/support/concurrency.js';
import { signJwt } from '../test/support/jwt.js';
import { newRegistration } from './fixtures.js';
import { load, requireClean, type AutocannonRequest, type LoadResult } from './load.js';
import type { CeilingRequest } from './server-child.js';

/** The bench server's settings for a run without the transparency log's append (bench/server-child.ts). */
export const WITHOUT_LOG = { BENCH_SERVER_LOG: 'off' } as const;

/** Connections for the registration and ceiling runs (enough to keep one server process busy). */
export const REGISTRATION_CONNECTIONS = 10;
/** Connections for lookups (issue #7: p99 at 50 connections). */
export const LOOKUP_CONNECTIONS = 50;
/** Connections for history reads: each request is ~0.1 s of server work, two keep it busy. */
export const HISTORY_CONNECTIONS = 2;

export interface ServerPlan {
  /** Measured seconds per scenario. */
  seconds: number;
  /** Untimed seconds (or the equivalent in requests) before each. */
  warmupSeconds: number;
}

/** An HS256 app token for `identity`, as the team's identity provider would sign it (AUTH_JWT_SECRET). */
export function tokenFor(server: BenchServer, identity: string): string {
  return signJwt({ sub: identity }, 'HS256', server.env.AUTH_JWT_SECRET!);
}

export async function api<T>(server: BenchServer, method: string, path: string, token: string, body?: unknown): Promise<{ status: number; json: T }> {
  const response = await fetch(server.appUrl + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, json: (await response.json()) as T };
}

/** Registers a card through POST /v1/cards; throws unless 201. */
export async function registerCard(server: BenchServer, identity: string, request: CardRequest): Promise<CardWire> {
  const { status, json } = await api<CardWire>(server, 'POST', ApiPath.cards, tokenFor(server, identity), request);
  if (status !== 201) throw new Error(`registering a card for ${identity}: ${status} ${JSON.stringify(json)}`);
  return json;
}

/** Feeds each request the next of `bodies` (shared by all connections, never reused). */
function distinct(bodies: readonly { headers: Record<string, string>; body: string }[], path: string): AutocannonRequest[] {
  let next = 0;
  return [
    {
      method: 'POST',
      path,
      setupRequest: (request) => {
        const item = bodies[Math.min(next++, bodies.length - 1)]!;
        return { ...request, headers: item.headers, body: item.body };
      },
    },
  ];
}

/** The ceiling: POST /ceiling, one verify + one sign per request, bodies of a registration's size. */
export async function benchCeiling(server: BenchServer, plan: ServerPlan, connections: number): Promise<LoadResult> {
  const token = tokenFor(server, 'bench-ceiling');
  const bodies = Array.from({ length: 64 }, (_, i) => {
    const { keys, request } = newRegistration(`bench-ceiling-${i}`, 'ceiling');
    const body: CeilingRequest = { ...request, signKey: toB64u(keys.signPublicKey) };
    // The same headers as a registration (the route ignores the token): the same bytes to parse.
    return { headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(body) };
  });
  let next = 0;
  const requests: AutocannonRequest[] = [
    { method: 'POST', path: '/ceiling', setupRequest: (request) => ({ ...request, ...bodies[next++ % bodies.length]! }) },
  ];
  await load({ url: server.ceilingUrl, connections, duration: plan.warmupSeconds, requests }, plan.warmupSeconds + 30);
  return requireClean('ceiling', await load({ url: server.ceilingUrl, connections, duration: plan.seconds, requests }, plan.seconds + 30, server));
}

/** Fresh registrations: `count` devices, 20 per identity (the active-card limit), each request with its identity's token. */
function registrationBodies(server: BenchServer, count: number, prefix: string): { headers: Record<string, string>; body: string }[] {
  const tokens = new Map<string, string>();
  return Array.from({ length: count }, (_, i) => {
    const identity = `${prefix}-${Math.floor(i / 20)}`;
    let token = tokens.get(identity);
    if (token === undefined) tokens.set(identity, (token = tokenFor(server, identity)));
    const { request } = newRegistration(identity, `device-${i % 20}`);
    return { headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(request) };
  });
}

let registrationRuns = 0;

/**
 * POST /v1/cards with a distinct fresh card per request. A warm-up of a few hundred cards also
 * measures the rate, which sizes the timed run to last about plan.seconds (every card is made,
 * with its keys and self-signature, before the run: the load generator only sends).
 */
export async function benchRegistration(server: BenchServer, plan: ServerPlan, connections: number): Promise<LoadResult> {
  const run = ++registrationRuns;
  const warm = registrationBodies(server, plan.seconds >= 10 ? 600 : 300, `bench-warm${run}`);
  const pilot = await load({ url: server.appUrl, connections, amount: warm.length, requests: distinct(warm, ApiPath.cards) }, plan.warmupSeconds * 10 + 30);
  requireClean('card registration warm-up', pilot);
  const count = Math.min(60_000, Math.max(300, Math.round(pilot.perSec * plan.seconds * 1.5)));
  const timed = registrationBodies(server, count, `bench-reg${run}`);
  return requireClean(
    'card registration',
    await load({ url: server.appUrl, connections, amount: timed.length, requests: distinct(timed, ApiPath.cards) }, plan.seconds * 4 + 30, server),
  );
}

export interface LookupResult {
  identitiesPerRequest: number;
  cardsPerResponse: number;
  connections: number;
  /** Closed loop: every connection sends its next request as soon as the last one is answered. */
  saturated: LoadResult;
  /** One connection, closed loop: the server's own time per lookup, nothing queued (1 ms resolution). */
  single: LoadResult;
}

/**
 * GET /v1/cards for a group of 5 identities with 3 active cards each (what a sender of a group
 * message asks for), 20 different groups in turn: over 50 connections as fast as the server
 * answers (its capacity; latency there is mostly queueing, 50 connections / rate), then over one
 * connection (no queueing: the server's own time).
 *
 * No paced (open-loop) run: autocannon paces each connection with its own timer, all started
 * together, so requests arrive in bursts of 50 and the tail measured is the burst (and, on a busy
 * machine, the load generator's own scheduling), not the server.
 */
export async function benchLookup(server: BenchServer, plan: ServerPlan, connections: number): Promise<LookupResult> {
  const identities = Array.from({ length: 100 }, (_, i) => `bench-peer-${i}`);
  const cardsPer = 3;
  await inParallel(
    identities.flatMap((identity) => Array.from({ length: cardsPer }, (_, d) => ({ identity, d }))),
    8,
    async ({ identity, d }) => registerCard(server, identity, newRegistration(identity, `device-${d}`).request),
  );
  const groupSize = 5;
  const token = tokenFor(server, 'bench-reader');
  const requests: AutocannonRequest[] = Array.from({ length: identities.length / groupSize }, (_, g) => ({
    method: 'GET',
    path: `${ApiPath.cards}?${identities.slice(g * groupSize, (g + 1) * groupSize).map((i) => `identity=${encodeURIComponent(i)}`).join('&')}`,
    headers: { authorization: `Bearer ${token}` },
  }));
  const check = await api<{ cards: Record<string, unknown[]> }>(server, 'GET', requests[0]!.path!, token);
  const cardsPerResponse = Object.values(check.json.cards).reduce((n, list) => n + list.length, 0);
  if (check.status !== 200 || cardsPerResponse !== groupSize * cardsPer) throw new Error(`lookup check: ${check.status} ${JSON.stringify(check.json).slice(0, 200)}`);
  const run = (name: string, options: { connections: number }) =>
    load({ url: server.appUrl, duration: plan.seconds, requests, ...options }, plan.seconds + 30, server).then((r) => requireClean(name, r));
  await load({ url: server.appUrl, connections, duration: plan.warmupSeconds, requests }, plan.warmupSeconds + 30);
  const saturated = await run('lookup', { connections });
  const single = await run('lookup over one connection', { connections: 1 });
  return { identitiesPerRequest: groupSize, cardsPerResponse, connections, saturated, single };
}
