/**
 * Records for the store tests: each call makes its own ids, identities and conversations, so a
 * test also holds on a store that already has data (the PostgreSQL suites share one schema).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { MIGRATIONS } from '../../server/store/migrations.js';
import type { HistoryRecord, RegisterCardOptions, RelayConversation, RelayMessage, RelayParticipant, StoredCard } from '../../server/store/types.js';

export const NOW = 1_700_000_000; // unix seconds
export const NOW_MS = NOW * 1000;

/** Every migration version of this release, as a migrated database records them. */
export const ALL_VERSIONS: readonly number[] = MIGRATIONS.map((m) => m.version);

export const uid = (prefix: string): string => `${prefix}-${randomUUID()}`;
export const key = (): string => randomBytes(32).toString('base64url');
/** A card id as the service makes them (64 hex): the log's events name it. */
export const cardId = (): string => randomBytes(32).toString('hex');

export function makeCard(identity: string, overrides: Partial<StoredCard> = {}): StoredCard {
  return {
    id: cardId(),
    identity,
    deviceId: uid('device'),
    signKey: key(),
    boxKey: key(),
    snapshot: `snapshot.${key()}`,
    selfSignature: key(),
    appSignature: key(),
    appKeyId: 'app-key-1',
    createdAt: NOW,
    registeredAt: NOW,
    revokedAt: null,
    ...overrides,
  };
}

export const registerOptions = (overrides: Partial<RegisterCardOptions> = {}): RegisterCardOptions => ({
  maxActivePerIdentity: 5,
  now: NOW + 60,
  ...overrides,
});

export function makeConversation(overrides: Partial<RelayConversation> = {}): RelayConversation {
  return {
    sid: uid('CH'),
    uniqueName: uid('room'),
    friendlyName: 'Support',
    attributes: '{"topic":"billing"}',
    createdBy: 'alice',
    dateCreatedMs: NOW_MS,
    ...overrides,
  };
}

export function makeMessage(conversationSid: string, overrides: Partial<RelayMessage> = {}) {
  return { sid: uid('IM'), conversationSid, author: 'alice', body: 'hello', attributes: '{}', dateCreatedMs: NOW_MS, ...overrides };
}

export function makeParticipant(conversationSid: string, identity: string, overrides: Partial<RelayParticipant> = {}) {
  return { sid: uid('MB'), conversationSid, identity, attributes: '{}', dateCreatedMs: NOW_MS, lastReadMessageIndex: null, ...overrides };
}

export function makeHistory(conversationSid: string, index: number, overrides: Partial<HistoryRecord> = {}): HistoryRecord {
  return {
    conversationSid,
    messageSid: uid('IM'),
    index,
    author: 'alice',
    senderCardId: uid('card'),
    envelope: `envelope.${key()}`,
    orgWrap: `wrap.${key()}`,
    storedAtMs: NOW_MS,
    editN: 0,
    ...overrides,
  };
}

export const indexes = (messages: readonly { index: number }[]): number[] => messages.map((m) => m.index);
export const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);
export const count = <T>(values: readonly T[], value: T): number => values.filter((v) => v === value).length;
