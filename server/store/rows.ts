/**
 * Table rows to store types, shared by both implementations: the two schemas use the same table
 * and column names, so one mapper per type serves both. Each accessor checks the runtime type,
 * so a schema or driver mistake (e.g. a BIGINT arriving as a string) fails loudly, not silently.
 */
import type { HistoryRecord, PendingDeviceRecord, RelayConversation, RelayMedia, RelayMessage, RelayMessageMedia, RelayParticipant, StoredCard } from './types.js';

export type Row = Record<string, unknown>;

function fail(column: string, expected: string, value: unknown): never {
  throw new TypeError(`store: column "${column}" expected ${expected}, got ${typeof value}`);
}

/** For statements that always return a row (an aggregate, a read of a row just written). */
export function required(row: Row | undefined): Row {
  if (row === undefined) throw new Error('store: a statement that always returns a row returned none');
  return row;
}

export function text(row: Row, column: string): string {
  const value = row[column];
  return typeof value === 'string' ? value : fail(column, 'text', value);
}

function textOrNull(row: Row, column: string): string | null {
  const value = row[column];
  return value === null || typeof value === 'string' ? value : fail(column, 'text or null', value);
}

export function int(row: Row, column: string): number {
  const value = row[column];
  return typeof value === 'number' && Number.isSafeInteger(value) ? value : fail(column, 'a safe integer', value);
}

function intOrNull(row: Row, column: string): number | null {
  return row[column] === null ? null : int(row, column);
}

/** SQLite answers 0/1, PostgreSQL true/false. */
export function bool(row: Row, column: string): boolean {
  const value = row[column];
  if (value === true || value === 1) return true;
  if (value === false || value === 0) return false;
  return fail(column, 'a boolean', value);
}

export function toCard(row: Row): StoredCard {
  return {
    id: text(row, 'id'),
    identity: text(row, 'identity'),
    deviceId: text(row, 'device_id'),
    signKey: text(row, 'sign_key'),
    boxKey: text(row, 'box_key'),
    snapshot: text(row, 'snapshot'),
    selfSignature: text(row, 'self_signature'),
    appSignature: text(row, 'app_signature'),
    appKeyId: text(row, 'app_key_id'),
    createdAt: int(row, 'created_at'),
    registeredAt: int(row, 'registered_at'),
    revokedAt: intOrNull(row, 'revoked_at'),
  };
}

export function toConversation(row: Row): RelayConversation {
  return {
    sid: text(row, 'sid'),
    uniqueName: textOrNull(row, 'unique_name'),
    friendlyName: textOrNull(row, 'friendly_name'),
    attributes: text(row, 'attributes'),
    createdBy: text(row, 'created_by'),
    dateCreatedMs: int(row, 'date_created_ms'),
  };
}

export function toParticipant(row: Row): RelayParticipant {
  return {
    sid: text(row, 'sid'),
    conversationSid: text(row, 'conversation_sid'),
    identity: text(row, 'identity'),
    attributes: text(row, 'attributes'),
    dateCreatedMs: int(row, 'date_created_ms'),
    lastReadMessageIndex: intOrNull(row, 'last_read_message_index'),
  };
}

export function toMessage(row: Row): RelayMessage {
  return {
    sid: text(row, 'sid'),
    conversationSid: text(row, 'conversation_sid'),
    index: int(row, 'idx'),
    author: text(row, 'author'),
    body: text(row, 'body'),
    attributes: text(row, 'attributes'),
    dateCreatedMs: int(row, 'date_created_ms'),
    dateUpdatedMs: intOrNull(row, 'date_updated_ms'),
    ...(row.media ? { media: JSON.parse(text(row, 'media')) as RelayMessageMedia[] } : {}),
  };
}

export function toMedia(row: Row): RelayMedia {
  return {
    sid: text(row, 'sid'),
    conversationSid: text(row, 'conversation_sid'),
    uploader: text(row, 'uploader'),
    filename: textOrNull(row, 'filename'),
    contentType: text(row, 'content_type'),
    size: int(row, 'size'),
    dateCreatedMs: int(row, 'date_created_ms'),
    messageSid: textOrNull(row, 'message_sid'),
  };
}

/** What a message lists of its media (messages.media). */
export const mediaListText = (media: readonly RelayMedia[]): string =>
  JSON.stringify(media.map(({ sid, filename, contentType, size }) => ({ sid, filename, contentType, size })));

export function toHistory(row: Row): HistoryRecord {
  return {
    conversationSid: text(row, 'conversation_sid'),
    messageSid: text(row, 'message_sid'),
    index: int(row, 'idx'),
    author: text(row, 'author'),
    senderCardId: text(row, 'sender_card_id'),
    envelope: text(row, 'envelope'),
    orgWrap: text(row, 'org_wrap'),
    storedAtMs: int(row, 'stored_at_ms'),
    editN: int(row, 'edit_n'),
    ...optional('orgKeyId', textOrNull(row, 'org_key_id')),
  };
}

/** `{[name]: value}`, or nothing when the column is NULL (an optional member stays absent). */
function optional<K extends string>(name: K, value: string | null): Partial<Record<K, string>> {
  return value === null ? {} : ({ [name]: value } as Record<K, string>);
}

export function toPendingDevice(row: Row): PendingDeviceRecord {
  const status = text(row, 'status');
  return {
    cardId: text(row, 'card_id'),
    identity: text(row, 'identity'),
    deviceName: text(row, 'device_name'),
    signKey: text(row, 'sign_key'),
    snapshot: text(row, 'snapshot'),
    selfSignature: text(row, 'self_signature'),
    requestedAt: int(row, 'requested_at'),
    expiresAt: int(row, 'expires_at'),
    status: status === 'pending' || status === 'rejected' ? status : fail('status', 'pending or rejected', status),
  };
}
