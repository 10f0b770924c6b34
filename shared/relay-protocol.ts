/**
 * The local conversations relay's WebSocket protocol (local mode, no Twilio account). JSON text
 * frames. The client's first frame is `auth`; every request carries an `id` that its response
 * echoes; the server pushes events without an id. The relay stores bodies exactly as given: it
 * only ever sees envelopes.
 *
 * Media (the relay's stand-in for Twilio's Media Content Service) travel over HTTP beside the
 * socket: POST <relay URL as http(s)>/media uploads a blob, and `getMediaUrls` hands out
 * short-lived signed URLs under the same path (server/relay/media-routes.ts).
 *
 * Error codes of answers: BAD_REQUEST, UNAUTHORIZED, TOKEN_EXPIRED, FORBIDDEN, NOT_FOUND,
 * CONFLICT, TOO_MANY_PARTICIPANTS, TOO_MANY_ATTACHMENTS, ATTRIBUTES_TOO_LARGE,
 * ATTRIBUTES_TOO_DEEP, RATE_LIMITED and INTERNAL (a fault of the relay). The relay closes a socket
 * with one of RELAY_CLOSE's codes.
 */
import { MAX_ATTACHMENT_BLOB_BYTES, MAX_ENVELOPE_TEXT_CHARS, MAX_IDENTITY_CHARS } from './limits.js';

export interface RelayConversationData {
  sid: string;
  uniqueName: string | null;
  friendlyName: string | null;
  attributes: unknown;
  createdBy: string;
  dateCreated: number; // unix ms
  /** The caller's read horizon, in answers (absent in pushes, which go to every participant). */
  lastReadMessageIndex?: number | null;
  /** Whether the caller is a participant, in answers (absent in pushes, as the read horizon). */
  status?: 'joined' | 'notParticipating';
  /** The newest message, or null when there is none; absent where not looked up (the SDK's lastMessage). */
  lastMessage?: { index: number; dateCreated: number } | null;
}

export interface RelayParticipantData {
  sid: string;
  conversationSid: string;
  identity: string;
  type: 'chat';
  attributes: unknown;
  dateCreated: number;
  /** The index of the last message this participant read; null when it never said. */
  lastReadMessageIndex: number | null;
}

/** A blob attached to a message (the SDK's Media): what the uploader declared, and its size. */
export interface RelayMediaData {
  /** ME + 32 hex. */
  sid: string;
  category: 'media';
  filename: string | null;
  contentType: string;
  /** Bytes, as stored. */
  size: number;
}

export interface RelayMessageData {
  sid: string;
  conversationSid: string;
  index: number;
  author: string;
  body: string;
  attributes: unknown;
  dateCreated: number;
  dateUpdated: number | null;
  /** The author's participant sid while the author is a participant, else null (the SDK's participantSid). */
  participantSid: string | null;
  /** The attached media in the order sent; absent (or empty) for a text message. */
  media?: RelayMediaData[];
}

/** Requests: op name → [params, result]. */
export interface RelayOps {
  auth: [{ token: string }, { identity: string }];
  updateToken: [{ token: string }, { identity: string }];
  createConversation: [{ uniqueName?: string; friendlyName?: string; attributes?: unknown }, RelayConversationData];
  getConversation: [{ sid: string }, RelayConversationData];
  /** The caller's conversations, a page at a time (pageSize, and answerBytes): pass nextPageToken on. */
  listConversations: [{ pageToken?: number }, { items: RelayConversationData[]; nextPageToken: number | null }];
  /**
   * Any participant; the fields given change (pushes conversationUpdated). A uniqueName of another
   * conversation is refused with CONFLICT, and nothing changes; null removes the unique name.
   */
  updateConversation: [{ conversationSid: string; friendlyName?: string; attributes?: unknown; uniqueName?: string | null }, RelayConversationData];
  join: [{ conversationSid: string }, RelayParticipantData];
  /** `attributes`: the new participant's (ignored when the identity is already a participant). */
  add: [{ conversationSid: string; identity: string; attributes?: unknown }, RelayParticipantData];
  /** `identity`: an identity or a participant sid. Any participant may remove any, itself included (leave). */
  removeParticipant: [{ conversationSid: string; identity: string }, { removed: boolean }];
  getParticipants: [{ conversationSid: string }, RelayParticipantData[]];
  /** Only the participant itself (identity = the caller). */
  updateParticipantAttributes: [{ conversationSid: string; identity: string; attributes: unknown }, RelayParticipantData];
  /**
   * `mediaSids`: blobs the caller uploaded to this conversation and never attached, at most
   * RELAY_LIMITS.mediaPerMessage (TOO_MANY_ATTACHMENTS); one that is not is NOT_FOUND, nothing sent.
   */
  sendMessage: [{ conversationSid: string; body: string; attributes?: unknown; mediaSids?: string[] }, RelayMessageData];
  /**
   * Download URLs (paths below the relay URL, as http(s)) of attached media, valid
   * RELAY_LIMITS.mediaUrlTtlMs; only for a current participant of each one's conversation
   * (NOT_FOUND otherwise, as for an unknown sid: nothing tells a stranger a sid exists).
   */
  getMediaUrls: [{ mediaSids: string[] }, { urls: Record<string, string> }];
  /**
   * A page may stop short of pageSize (at RELAY_LIMITS.answerBytes of messages, never fewer than
   * one): hasPrev / hasNext then say there is more, as when the page is full.
   */
  getMessages: [
    { conversationSid: string; pageSize: number; anchor?: number; direction: 'backwards' | 'forward' },
    { items: RelayMessageData[]; hasPrev: boolean; hasNext: boolean },
  ];
  /** The author only, as updateMessageAttributes and removeMessage. */
  updateMessageBody: [{ conversationSid: string; messageSid: string; body: string }, RelayMessageData];
  updateMessageAttributes: [{ conversationSid: string; messageSid: string; attributes: unknown }, RelayMessageData];
  /** Deletes the message and its organization history copy (pushes messageRemoved). */
  removeMessage: [{ conversationSid: string; messageSid: string }, RelayMessageData];
  /** Tells the other participants the caller is typing (pushes typingStarted); nothing is stored. */
  typing: [{ conversationSid: string }, { timeoutMs: number }];
  /**
   * Sets the caller's read horizon: an index, 'newest' (the newest message: setAllMessagesRead),
   * or null (none: setAllMessagesUnread). With `advance`, an index only moves the horizon forward
   * (advanceLastReadMessageIndex). Answers the unread count after it.
   */
  updateLastReadMessageIndex: [
    { conversationSid: string; index: number | null | 'newest'; advance?: boolean },
    { unreadCount: number; participant: RelayParticipantData },
  ];
  /** Messages after the caller's read horizon; null when it has none. */
  getUnreadMessagesCount: [{ conversationSid: string }, { count: number | null }];
  /** The messages the conversation holds (removed ones not counted): one indexed count. */
  getMessagesCount: [{ conversationSid: string }, { count: number }];
}

export type RelayOp = keyof RelayOps;

export type RelayResponse =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: { code: string; message: string } };

/** Server pushes. conversationAdded: the identity was added to a conversation. */
export interface RelayEvents {
  conversationAdded: RelayConversationData;
  conversationRemoved: { conversationSid: string };
  participantJoined: RelayParticipantData;
  participantLeft: RelayParticipantData;
  /** A participant's attributes or read horizon changed, with the SDK's updateReasons. */
  participantUpdated: RelayParticipantData & { updateReasons: Array<'attributes' | 'lastReadMessageIndex'> };
  /** A conversation's friendlyName, attributes or uniqueName changed, with the SDK's updateReasons. */
  conversationUpdated: RelayConversationData & { updateReasons: Array<'friendlyName' | 'attributes' | 'uniqueName'> };
  messageAdded: RelayMessageData;
  messageUpdated: RelayMessageData & { updateReasons: Array<'body' | 'attributes'> };
  messageRemoved: RelayMessageData;
  /** To the other participants: typing ends `timeoutMs` after the last of these, or at its author's next message. */
  typingStarted: { participant: RelayParticipantData; timeoutMs: number };
  tokenAboutToExpire: Record<string, never>;
}

export type RelayEventName = keyof RelayEvents;

export interface RelayPush<K extends RelayEventName = RelayEventName> {
  event: K;
  data: RelayEvents[K];
}

/** How long typing lasts without a further typing(): the SDK's typingIndicatorTimeoutDefault. */
export const TYPING_TIMEOUT_MS = 5_000;

/** Relay limits, mirroring Twilio's where Twilio has one. */
export const RELAY_LIMITS = {
  /** Twilio's body limit, which envelopes are made to fit. */
  bodyChars: MAX_ENVELOPE_TEXT_CHARS,
  /** Attributes of conversations, messages and participants: JSON text bytes, and nesting depth. */
  attributesBytes: 4 * 1024,
  attributesDepth: 32,
  identityChars: MAX_IDENTITY_CHARS,
  participantsPerConversation: 1000,
  pageSize: 100,
  /** A frame from the client; a larger one closes the socket with 1009. */
  frameBytes: 64 * 1024,
  /** Items per getMessages or listConversations answer, in JSON bytes (the page stops early; at least one item). */
  answerBytes: 256 * 1024,
  /** Frames received and not yet answered per socket: the relay stops reading the socket there. */
  framesInFlight: 32,
  /** Data waiting to be sent to one socket; more closes it (RELAY_CLOSE.backlog). */
  bufferedBytes: 4 * 1024 * 1024,
  /** One uploaded blob (Twilio's media limit): ATTACHMENT_TOO_LARGE (413) past it. */
  mediaBytes: MAX_ATTACHMENT_BLOB_BYTES,
  /** Media per message (Twilio's): TOO_MANY_ATTACHMENTS (413) past it. */
  mediaPerMessage: 10,
  /** Media sids per getMediaUrls request. */
  mediaUrlsPerRequest: 100,
  /** Lifetime of a download URL. */
  mediaUrlTtlMs: 5 * 60_000,
  /** An upload never attached to a message is deleted this long after it finished. */
  unattachedMediaMs: 60 * 60_000,
  /** Uploads in progress per identity and process: RATE_LIMITED past it. */
  uploadsInFlight: 4,
  /** Bytes of finished uploads not attached yet, per identity: RATE_LIMITED past it (until sent or deleted). */
  unattachedBytes: 10 * MAX_ATTACHMENT_BLOB_BYTES,
} as const;

/** Close codes of the relay (besides 1001 server shutdown and 1009 frame too large). */
export const RELAY_CLOSE = {
  /** The relay token expired and no `updateToken` replaced it in time. */
  tokenExpired: 4401,
  /** No valid `auth` frame within RELAY_AUTH_TIMEOUT of connecting. */
  authTimeout: 4408,
  /** The client did not read: more than RELAY_LIMITS.bufferedBytes waited to be sent to it. */
  backlog: 4429,
} as const;
