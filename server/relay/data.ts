/**
 * The local relay's data rules: sids, the checks of strings and attributes a client sends, the
 * stored rows as the protocol's data (shared/relay-protocol.ts), and answers cut to size.
 */
import { randomBytes } from 'node:crypto';
import { E2EEError, ErrorCode } from '../../shared/errors.js';
import {
  RELAY_LIMITS,
  type RelayConversationData,
  type RelayMessageData,
  type RelayParticipantData,
} from '../../shared/relay-protocol.js';
import { isStorableText } from '../storable-text.js';
import type { RelayConversation, RelayMessage, RelayParticipant } from '../store/types.js';
import { toMediaData } from './media.js';

export function newSid(prefix: string): string {
  return prefix + randomBytes(16).toString('hex');
}

function parseAttributes(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return {};
  }
}

/** Whether a JSON value nests deeper than `limit` (a scalar is depth 0, `{}` depth 1); no recursion. */
function nestsDeeperThan(value: unknown, limit: number): boolean {
  const stack: Array<{ value: unknown; depth: number }> = [{ value, depth: 0 }];
  while (stack.length > 0) {
    const { value: v, depth } = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (depth >= limit) return true;
    for (const child of Object.values(v)) stack.push({ value: child, depth: depth + 1 });
  }
  return false;
}

export function attributesText(value: unknown): string {
  // Checked before JSON.stringify, which recurses: a value nested thousands deep overflows the stack.
  if (nestsDeeperThan(value, RELAY_LIMITS.attributesDepth)) {
    throw new E2EEError(ErrorCode.ATTRIBUTES_TOO_DEEP, `attributes may nest at most ${RELAY_LIMITS.attributesDepth} levels`);
  }
  const text = JSON.stringify(value ?? {});
  if (text === undefined || Buffer.byteLength(text) > RELAY_LIMITS.attributesBytes) {
    throw new E2EEError(ErrorCode.ATTRIBUTES_TOO_LARGE, `attributes must be JSON of at most ${RELAY_LIMITS.attributesBytes} bytes`);
  }
  return text;
}

export const toConversationData = (c: RelayConversation): RelayConversationData => ({
  sid: c.sid,
  uniqueName: c.uniqueName,
  friendlyName: c.friendlyName,
  attributes: parseAttributes(c.attributes),
  createdBy: c.createdBy,
  dateCreated: c.dateCreatedMs,
});

export const toParticipantData = (p: RelayParticipant): RelayParticipantData => ({
  sid: p.sid,
  conversationSid: p.conversationSid,
  identity: p.identity,
  type: 'chat',
  attributes: parseAttributes(p.attributes),
  dateCreated: p.dateCreatedMs,
  lastReadMessageIndex: p.lastReadMessageIndex,
});

/** A message as sent; `participants` (the conversation's now) give its author's participant sid. */
export const toMessageData = (m: RelayMessage, participants: readonly RelayParticipant[]): RelayMessageData => ({
  sid: m.sid,
  conversationSid: m.conversationSid,
  index: m.index,
  author: m.author,
  body: m.body,
  attributes: parseAttributes(m.attributes),
  dateCreated: m.dateCreatedMs,
  dateUpdated: m.dateUpdatedMs,
  participantSid: participants.find((p) => p.identity === m.author)?.sid ?? null,
  ...(m.media ? { media: m.media.map(toMediaData) } : {}),
});

export function str(value: unknown, field: string, max: number, min = 1): string {
  // NUL is refused: PostgreSQL text cannot hold it, and no envelope or identity contains it. So
  // is a lone surrogate: the stores write UTF-8, so it would come back as U+FFFD, a different
  // string (an identity added that way is someone else).
  if (typeof value !== 'string' || value.length < min || value.length > max || !isStorableText(value)) {
    throw new E2EEError(ErrorCode.BAD_REQUEST, `"${field}" must be a string of ${min}..${max} characters without NUL, in well-formed Unicode`);
  }
  return value;
}

/** The first items that fit in one answer (RELAY_LIMITS.answerBytes of JSON), at least one. */
export function withinAnswerBytes<T>(items: T[]): T[] {
  let budget = RELAY_LIMITS.answerBytes;
  let kept = 0;
  for (const item of items) {
    budget -= Buffer.byteLength(JSON.stringify(item));
    if (kept > 0 && budget < 0) break;
    kept++;
  }
  return items.slice(0, kept);
}
