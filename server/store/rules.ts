/**
 * Decisions both implementations must make identically. Each implementation only gathers the
 * facts (in its own transaction) and writes the outcome; the rule itself lives here once.
 */
import { bool, int, type Row } from './rows.js';
import type { MessagePageQuery, RegisterCardOptions, RegisterCardResult, StoredCard } from './types.js';

/** What registerCard reads, under its lock, before deciding. One query in both dialects. */
export interface RegistrationFacts {
  idTaken: boolean;
  /** The sign key or the box key belongs to some card, revoked ones included. */
  keyTaken: boolean;
  activeCount: number;
  /** `options.supersedes` names an active card of the same identity. */
  supersedable: boolean;
}

export function toRegistrationFacts(row: Row): RegistrationFacts {
  return {
    idTaken: bool(row, 'id_taken'),
    keyTaken: bool(row, 'key_taken'),
    activeCount: int(row, 'active_count'),
    supersedable: bool(row, 'supersedable'),
  };
}

/**
 * The first failing check wins: CARD_EXISTS, then KEY_IN_USE, then HAS_ACTIVE_CARDS (firstOnly),
 * then TOO_MANY_CARDS. The card being
 * superseded does not count against the limit, so a device can always replace its own card.
 */
export function planRegistration(facts: RegistrationFacts, options: RegisterCardOptions): RegisterCardResult {
  if (facts.idTaken) return { ok: false, reason: 'CARD_EXISTS' };
  if (facts.keyTaken) return { ok: false, reason: 'KEY_IN_USE' };
  if (options.firstOnly && facts.activeCount > 0) return { ok: false, reason: 'HAS_ACTIVE_CARDS' };
  const superseded = facts.supersedable ? (options.supersedes ?? null) : null;
  const remaining = facts.activeCount - (superseded === null ? 0 : 1);
  if (remaining >= options.maxActivePerIdentity) return { ok: false, reason: 'TOO_MANY_CARDS' };
  return { ok: true, superseded };
}

/** A negative or NaN limit means none (SQLite would read LIMIT -1 as "no limit"). */
export function clampLimit(limit: number): number {
  return Number.isFinite(limit) ? Math.max(0, Math.floor(limit)) : 0;
}

/** A message page as SQL bounds: forward reads idx >= anchor, backwards idx <= anchor. */
export function pageBounds(query: MessagePageQuery): { backwards: boolean; anchor: number; limit: number } {
  const backwards = query.direction === 'backwards';
  const anchor = query.anchor ?? (backwards ? Number.MAX_SAFE_INTEGER : 0);
  return { backwards, anchor, limit: clampLimit(query.limit) };
}

/** Every asked identity becomes a key (empty when it has no active card); cards keep their order. */
export function groupByIdentity(identities: readonly string[], cards: readonly StoredCard[]): Map<string, StoredCard[]> {
  const byIdentity = new Map<string, StoredCard[]>(identities.map((identity) => [identity, []]));
  for (const card of cards) byIdentity.get(card.identity)?.push(card);
  return byIdentity;
}
