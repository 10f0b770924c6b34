/**
 * The card service under load (autocannon on loopback against bench/server-child.ts):
 * registration against its ceiling route, and lookups. Every request is a real one: fresh cards
 * with their own keys and valid self-signatures, app tokens the server verifies.
 */
import type { AutocannonRequest } from 'autocannon';
import { ApiPath } from '../shared/api.js';
import type { CardRequest, CardWire } from '../shared/card.js';
import { toB64u } from '../shared/encoding.js';
import type { BenchServer } from './child.js';
import { newRegistration, signAppToken } from './fixtures.js';
import { load, requireClean, type LoadResult } from './load.js';
import type { CeilingRequest } from './server-child.js';

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

/** Runs fn over items with at most `concurrency` in flight. */
export async function pool<T, R>(items: readonly T[], concurrency: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return out;
}

export function tokenFor(server: BenchServer, identity: string): string {
  return signAppToken(identity, server.env.AUTH_JWT_SECRET!);
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
  const bodies = Array.from({ length: 64 }, (_, i) => {
    const { keys, request } = newRegistration(`bench-ceiling-${i}`, 'ceiling');
    const body: CeilingRequest = { ...request, signKey: toB64u(keys.signPublicKey) };
    return { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
  });
  let next = 0;
  const requests: AutocannonRequest[] = [
    { method: 'POST', path: '/ceiling', setupRequest: (request) => ({ ...request, ...bodies[next++ % bodies.length]! }) },
  ];
  await load({ url: server.ceilingUrl, connections, duration: plan.warmupSeconds, requests }, plan.warmupSeconds + 30);
  return requireClean('ceiling', await load({ url: server.ceilingUrl, connections, duration: plan.seconds, requests }, plan.seconds + 30));
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
 * POST /v1/cards with a distinct fresh card per request. The run is `count` requests (sized by
 * the caller from the ceiling rate, so it lasts about plan.seconds), bounded in time.
 */
export async function benchRegistration(server: BenchServer, plan: ServerPlan, connections: number, count: number): Promise<LoadResult> {
  const warmupCount = Math.max(200, Math.round(count * (plan.warmupSeconds / plan.seconds)));
  const run = ++registrationRuns;
  const warm = registrationBodies(server, warmupCount, `bench-warm${run}`);
  const timed = registrationBodies(server, count, `bench-reg${run}`);
  await load({ url: server.appUrl, connections, amount: warm.length, requests: distinct(warm, ApiPath.cards) }, plan.warmupSeconds * 4 + 30);
  return requireClean(
    'card registration',
    await load({ url: server.appUrl, connections, amount: timed.length, requests: distinct(timed, ApiPath.cards) }, plan.seconds * 4 + 30),
  );
}

export interface LookupResult extends LoadResult {
  identitiesPerRequest: number;
  cardsPerResponse: number;
  connections: number;
}

/**
 * GET /v1/cards for a group of 5 identities with 3 active cards each (what a sender of a group
 * message asks for), 20 different groups in turn, 50 connections.
 */
export async function benchLookup(server: BenchServer, plan: ServerPlan, connections: number): Promise<LookupResult> {
  const identities = Array.from({ length: 100 }, (_, i) => `bench-peer-${i}`);
  const cardsPer = 3;
  await pool(
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
  await load({ url: server.appUrl, connections, duration: plan.warmupSeconds, requests }, plan.warmupSeconds + 30);
  const result = requireClean('lookup', await load({ url: server.appUrl, connections, duration: plan.seconds, requests }, plan.seconds + 30));
  return { ...result, identitiesPerRequest: groupSize, cardsPerResponse, connections };
}
