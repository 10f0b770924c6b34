/**
 * The store's interfaces, one per concern (settings, cards, relay, media, history, log; authorizations in authorization-types.ts), and Store, all of
 * them together. Two implementations (SQLite, PostgreSQL) pass the same contract tests in
 * test/server/store.contract.ts. Every method is async (pg is), and every multi-step change
 * that must be atomic is one method here, so the implementations own their transactions.
 * Times are unix seconds unless a name says Ms.
 */
import type { TreeNode } from '../../shared/merkle.js';
import type { AuthorizationStore, CardAuthorization } from './authorization-types.js';

export type { AuthorizationStore, CardAuthorization, CardAuthorizationRecord } from './authorization-types.js';

/** A countersigned card as stored. `snapshot`, signatures are the exact b64u strings of the wire form. */
export interface StoredCard {
  id: string;
  identity: string;
  deviceId: string;
  /** b64u Ed25519 public key (unique across all cards ever registered). */
  signKey: string;
  /** b64u X25519 public key (unique across all cards ever registered). */
  boxKey: string;
  snapshot: string;
  selfSignature: string;
  appSignature: string;
  appKeyId: string;
  createdAt: number;
  registeredAt: number;
  revokedAt: number | null;
}

export type RegisterCardResult =
  | { ok: true; superseded: string | null }
  | { ok: false; reason: 'CARD_EXISTS' | 'KEY_IN_USE' | 'TOO_MANY_CARDS' | 'HAS_ACTIVE_CARDS' };

export interface RegisterCardOptions {
  /** Refuse when the identity already has this many active cards (after any supersede). */
  maxActivePerIdentity: number;
  /** previousCardId of the new card: revoked in the same transaction if it is an active card of the same identity. */
  supersedes?: string;
  /** Refuse with HAS_ACTIVE_CARDS when the identity has any active card (its first device only). */
  firstOnly?: boolean;
  now: number;
  /** The device proof of the request: kept for the registration (and the supersede's revocation) in the same transaction. */
  authorization?: CardAuthorization;
}

/** A new device's card waiting for an existing device's approval (server/device-auth.ts). */
export interface PendingDeviceRecord {
  /** The id of the card it would become; names the request. */
  cardId: string;
  identity: string;
  deviceName: string;
  /** b64u sign key: a device asking again (new card, same keys) replaces its earlier request. */
  signKey: string;
  snapshot: string;
  selfSignature: string;
  requestedAt: number;
  expiresAt: number;
  status: 'pending' | 'rejected';
}

export interface AddPendingDeviceOptions {
  /** Refuse when the identity already has this many unexpired pending requests. */
  maxPerIdentity: number;
  now: number;
}

export interface RelayConversation {
  sid: string;
  uniqueName: string | null;
  friendlyName: string | null;
  attributes: string;
  createdBy: string;
  dateCreatedMs: number;
}

export interface RelayParticipant {
  sid: string;
  conversationSid: string;
  identity: string;
  /** JSON text, as for conversations and messages. */
  attributes: string;
  dateCreatedMs: number;
  /** The participant's read horizon: the index of the last message it read; null when never set. */
  lastReadMessageIndex: number | null;
}

export interface RelayMessage {
  sid: string;
  conversationSid: string;
  /** Assigned by the store: 0, 1, 2, ... per conversation, without gaps. */
  index: number;
  author: string;
  body: string;
  /** JSON text, passed through. */
  attributes: string;
  dateCreatedMs: number;
  dateUpdatedMs: number | null;
  /** The media attached when it was sent, in order; absent for a message without any. */
  media?: RelayMessageMedia[];
}

/** A blob as a message lists it (fixed at send time). */
export interface RelayMessageMedia {
  sid: string;
  filename: string | null;
  contentType: string;
  size: number;
}

/** An uploaded blob of the relay's media service. */
export interface RelayMedia extends RelayMessageMedia {
  conversationSid: string;
  /** The identity that uploaded it: the only one who may attach it. */
  uploader: string;
  dateCreatedMs: number;
  /** The message it is attached to; null until then. */
  messageSid: string | null;
}

/** An upload to store: the store counts its size. */
export type NewRelayMedia = Omit<RelayMedia, 'size' | 'messageSid'>;

export interface MessagePageQuery {
  /** Inclusive anchor index; omitted = the newest (backwards) or oldest (forward). */
  anchor?: number;
  direction: 'backwards' | 'forward';
  limit: number;
}

export interface HistoryRecord {
  conversationSid: string;
  messageSid: string;
  index: number;
  author: string;
  senderCardId: string;
  envelope: string;
  orgWrap: string;
  storedAtMs: number;
  /** The version's signed edit counter: 0 for the original (and for any version 1 payload), n for the nth edit. */
  editN: number;
  /**
   * The id of the OrgKey the orgWrap is for (server/org-key-ring.ts). Absent on copies stored
   * before it was recorded: those are wrapped for whichever ORG_KEY the server held then.
   */
  orgKeyId?: string;
}

/** Where a walk through every history copy stands: the last copy seen, in (conversationSid, messageSid) order. */
export interface HistoryCursor {
  conversationSid: string;
  messageSid: string;
}

/** A copy's orgWrap replaced by one for another OrgKey (rewrap-history). */
export interface OrgWrapChange {
  conversationSid: string;
  messageSid: string;
  /** The orgWrap read: the change applies only while the copy still holds it. */
  previousOrgWrap: string;
  orgWrap: string;
  orgKeyId: string;
}

/** Server settings, e.g. the OrgCard, made once and shared by all instances. */
export interface SettingsStore {
  getSetting(key: string): Promise<string | null>;
  /** Stores value unless the key exists; returns the value now stored (the first writer wins). */
  putSettingIfAbsent(key: string, value: string): Promise<string>;
}

/**
 * Cards, and the devices waiting for approval to get one (expired requests are never returned,
 * and dropped on add). Every card change (a registration, a supersede, a revocation) appends its
 * event to the transparency log in the same transaction: no card exists outside the log.
 */
export interface CardStore {
  /** Atomically: key uniqueness, supersede, active-card limit, insert. */
  registerCard(card: StoredCard, options: RegisterCardOptions): Promise<RegisterCardResult>;
  getCard(id: string): Promise<StoredCard | null>;
  /** Active (not revoked) cards of each identity, oldest first; every asked identity is a key. */
  activeCards(identities: readonly string[]): Promise<Map<string, StoredCard[]>>;
  /**
   * Sets revokedAt (keeps an earlier one, and then logs nothing); returns the card as now stored,
   * or null when unknown. `authorization` is kept with the revocation it made, in its transaction.
   */
  revokeCard(id: string, now: number, authorization?: CardAuthorization): Promise<StoredCard | null>;

  /**
   * Atomically: drops the identity's expired requests and its other requests with the same sign
   * key, then returns the request already stored under this card id, or stores this one unless
   * the identity has `maxPerIdentity` pending ones (TOO_MANY_PENDING).
   */
  addPendingDevice(record: PendingDeviceRecord, options: AddPendingDeviceOptions): Promise<PendingDeviceRecord | 'TOO_MANY_PENDING'>;
  getPendingDevice(cardId: string, now: number): Promise<PendingDeviceRecord | null>;
  /** Unexpired requests of `identity` still pending, oldest first. */
  pendingDevices(identity: string, now: number): Promise<PendingDeviceRecord[]>;
  /** Removes and returns the identity's unexpired pending request (to approve it), or null. */
  takePendingDevice(cardId: string, identity: string, now: number): Promise<PendingDeviceRecord | null>;
  /** Marks the identity's unexpired pending request rejected (kept until it expires), or null. */
  rejectPendingDevice(cardId: string, identity: string, now: number): Promise<PendingDeviceRecord | null>;
}

/** A message to append: the store assigns its index. */
export type NewRelayMessage = Omit<RelayMessage, 'index' | 'dateUpdatedMs'>;

/** A participant to add: attributes default to `{}`, with no read horizon. */
export type NewRelayParticipant = Omit<RelayParticipant, 'attributes' | 'lastReadMessageIndex'> & { attributes?: string };

/** What updateConversation changes: the fields given. */
export interface RelayConversationChange {
  friendlyName?: string | null;
  /** JSON text. */
  attributes?: string;
  /** null removes the unique name. */
  uniqueName?: string | null;
}

/** What updateMessage changes: the fields given. */
export interface RelayMessageChange {
  body?: string;
  /** JSON text. */
  attributes?: string;
}

/** The local conversations relay: conversations, their participants and messages. */
export interface RelayStore {
  /** Creates a conversation; null when its sid or uniqueName is already taken (Twilio answers 409). */
  createConversation(conversation: RelayConversation): Promise<RelayConversation | null>;
  getConversation(sidOrUniqueName: string): Promise<RelayConversation | null>;
  conversationsOf(identity: string): Promise<RelayConversation[]>;
  /**
   * Changes the fields given, all or none; null for an unknown conversation, and (nothing
   * changed) when the uniqueName is another conversation's.
   */
  updateConversation(sid: string, change: RelayConversationChange): Promise<RelayConversation | null>;
  /** Adds a participant; returns the existing one when already there. Rejects for an unknown conversation. */
  addParticipant(participant: NewRelayParticipant): Promise<{ participant: RelayParticipant; created: boolean }>;
  removeParticipant(conversationSid: string, identity: string): Promise<RelayParticipant | null>;
  participants(conversationSid: string): Promise<RelayParticipant[]>;
  isParticipant(conversationSid: string, identity: string): Promise<boolean>;
  getParticipant(conversationSid: string, identity: string): Promise<RelayParticipant | null>;
  /** Replaces a participant's attributes (JSON text); null when it is not a participant. */
  updateParticipantAttributes(conversationSid: string, identity: string, attributes: string): Promise<RelayParticipant | null>;
  /** Sets a participant's read horizon (null: none); null when it is not a participant. */
  setLastReadMessageIndex(conversationSid: string, identity: string, index: number | null): Promise<RelayParticipant | null>;
  /**
   * Appends with the next index (atomic under concurrency); returns the stored message.
   * Rejects for an unknown conversation.
   */
  appendMessage(message: NewRelayMessage): Promise<RelayMessage>;
  /**
   * appendMessage with media, atomically: each sid must be a stored upload by the message's
   * author to its conversation, not attached yet; they are attached in the order given and
   * listed in the message. null (nothing appended, nothing attached) when any is not.
   */
  appendMediaMessage(message: NewRelayMessage, mediaSids: readonly string[]): Promise<RelayMessage | null>;
  getMessage(conversationSid: string, messageSid: string): Promise<RelayMessage | null>;
  /** A page in ascending index order. */
  messages(conversationSid: string, query: MessagePageQuery): Promise<RelayMessage[]>;
  /** Changes a message's body and/or attributes and sets dateUpdatedMs; null for an unknown message. */
  updateMessage(conversationSid: string, messageSid: string, change: RelayMessageChange, nowMs: number): Promise<RelayMessage | null>;
  /** Deletes a message (its index is not reused) and its media; returns it, or null when unknown. */
  removeMessage(conversationSid: string, messageSid: string): Promise<RelayMessage | null>;
  /** How many messages have an index above `after`. */
  countMessagesAfter(conversationSid: string, after: number): Promise<number>;
}

/**
 * The relay's blobs (its stand-in for Twilio's Media Content Service): files under the data
 * directory (SQLite), large objects (PostgreSQL). Bytes are streamed in and out, never held whole.
 */
export interface MediaStore {
  /**
   * Stores a blob read from `content`; resolves once it is durable (fsynced, committed). When
   * `content` throws (too large, the client went away), nothing of it is kept and this rejects.
   */
  putMedia(media: NewRelayMedia, content: AsyncIterable<Uint8Array>): Promise<RelayMedia>;
  /** A stored blob's record; null when unknown (or its upload has not finished). */
  getMedia(sid: string): Promise<RelayMedia | null>;
  /** A stored blob's bytes, in order; null when unknown. */
  readMedia(sid: string): Promise<AsyncIterable<Uint8Array> | null>;
  /** Bytes of `uploader`'s stored blobs not attached to a message. */
  unattachedMediaBytes(uploader: string): Promise<number>;
  /**
   * Deletes blobs never attached that were stored before `beforeMs`, and what interrupted
   * uploads left behind; returns how many blobs went.
   */
  sweepMedia(beforeMs: number): Promise<number>;
}

export type PutHistoryOutcome = 'created' | 'replaced' | 'exists';

/** The organization history: backed-up envelopes with their orgWraps, the latest version of each message. */
export interface HistoryStore {
  /**
   * One record per (conversationSid, messageSid): 'created' the first time; 'replaced' when the
   * stored record has a lower editN (a newer version of the message replaces it, in one atomic
   * step, so of concurrent puts the highest editN ends up stored); 'exists' otherwise (an equal
   * or lower editN never replaces).
   */
  putHistory(record: HistoryRecord): Promise<PutHistoryOutcome>;
  /** A message's record, or null. */
  getHistory(conversationSid: string, messageSid: string): Promise<HistoryRecord | null>;
  /** Records with index > after, ascending, at most limit. */
  history(conversationSid: string, after: number, limit: number): Promise<HistoryRecord[]>;
  /** Deletes a message's record (the message was removed); whether there was one. */
  deleteHistory(conversationSid: string, messageSid: string): Promise<boolean>;
  /**
   * Records whose orgWrap is not recorded as being for OrgKey `orgKeyId` (another key's, or no
   * key id), after `after` in (conversationSid, messageSid) order, at most limit.
   */
  historyNotWrappedFor(orgKeyId: string, after: HistoryCursor | null, limit: number): Promise<HistoryRecord[]>;
  /** How many records historyNotWrappedFor goes through from the start. */
  countHistoryNotWrappedFor(orgKeyId: string): Promise<number>;
  /**
   * Sets orgWrap and orgKeyId of each record that still holds `previousOrgWrap`, all in one
   * transaction; a record replaced (a newer version) or deleted meanwhile is left as it is.
   * Returns how many were set.
   */
  setOrgWraps(changes: readonly OrgWrapChange[]): Promise<number>;
}

/** One card event of the transparency log (shared/log-event.ts), as stored. */
export interface LogEventRecord {
  /** Its leaf index in the log. */
  index: number;
  identity: string;
  /** Its place in the identity's chain, from 0. */
  seq: number;
  cardId: string;
  kind: 'registration' | 'revocation';
  /** The exact leaf bytes (encodeCardEvent). */
  leaf: Uint8Array;
}

/** A checkpoint the log published: one per tree size. */
export interface LogCheckpointRecord {
  size: number;
  rootHash: Uint8Array;
  /** The signed note, the LogKey's signature only (cosignatures are kept apart). */
  note: string;
  createdAtMs: number;
}

/** A witness's cosignature of a checkpoint: its signature line ("— name base64\n"). */
export interface LogCosignatureRecord {
  name: string;
  keyId: number;
  line: string;
}

/**
 * The card transparency log (docs/PROTOCOL.md 17.6). Its events are appended by the CardStore
 * methods, in the same transaction as the card change; this reads them and keeps checkpoints.
 */
export interface LogStore {
  /** Leaves in the log now. */
  logSize(): Promise<number>;
  /** The hashes of stored perfect subtrees, in the order asked; rejects when one is not stored. */
  logNodes(nodes: readonly TreeNode[]): Promise<Uint8Array[]>;
  logEvent(index: number): Promise<LogEventRecord | null>;
  /** The registration event of each card id that has one. */
  cardEvents(cardIds: readonly string[]): Promise<Map<string, LogEventRecord>>;
  /** The identity's events with seq >= sinceSeq and index < beforeIndex, by seq, at most limit. */
  identityEvents(identity: string, sinceSeq: number, beforeIndex: number, limit: number): Promise<LogEventRecord[]>;
  /** The checkpoint of the largest size, or null before the first. */
  latestCheckpoint(): Promise<LogCheckpointRecord | null>;
  logCheckpoint(size: number): Promise<LogCheckpointRecord | null>;
  /**
   * Stores `checkpoint` unless the latest stored one is as large, or was stored less than
   * `minIntervalMs` before it (another instance published meanwhile); returns the latest stored.
   */
  putCheckpoint(checkpoint: LogCheckpointRecord, minIntervalMs: number): Promise<LogCheckpointRecord>;
  /** Stores a witness's cosignature of the checkpoint of `size` (replacing that key's earlier line); false when there is no such checkpoint. */
  putLogCosignature(size: number, cosignature: LogCosignatureRecord): Promise<boolean>;
  /** The cosignatures held for the checkpoint of `size`, by key name. */
  logCosignatures(size: number): Promise<LogCosignatureRecord[]>;
}

/** The whole store: every concern on one connection (pool or file), opened and closed together. */
export interface Store extends SettingsStore, CardStore, RelayStore, MediaStore, HistoryStore, LogStore, AuthorizationStore {
  /** 'sqlite' or 'postgres', for logs and /readyz. */
  readonly kind: string;
  /** Throws when the store is not reachable (used by /readyz). */
  ping(): Promise<void>;
  close(): Promise<void>;
}
