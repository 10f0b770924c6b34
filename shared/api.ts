/**
 * HTTP API types shared by the server and the client (docs/API.md). Bodies are JSON;
 * every error is `{"error": {"code", "message"}}` with a 4xx/5xx status and a stable code
 * (shared/errors.ts).
 */
import type { CardWire } from './card.js';

/** The body of every error answer; `code` is one of shared/errors.ts ErrorCode (clients also meet codes newer than theirs). */
export interface ApiErrorBody {
  error: { code: string; message: string };
}

export type TwilioTokenResponse =
  | { mode: 'twilio'; token: string; identity: string; ttl: number }
  | { mode: 'local'; token: string; identity: string; ttl: number; relayUrl: string };

/**
 * A new device waiting for an existing device's approval (NEW_DEVICE_POLICY=approval): the answer
 * of POST /v1/cards (202) and the items of GET /v1/device-requests. `cardId` names the request.
 */
export interface PendingDevice {
  cardId: string;
  identity: string;
  deviceName: string;
  /** The card as the new device signed it; approving countersigns exactly this. */
  snapshot: string;
  selfSignature: string;
  requestedAt: number;
  expiresAt: number;
  status: 'pending' | 'rejected';
}
export interface DeviceRequestsResponse {
  requests: PendingDevice[];
}
/** GET /v1/device-requests/:cardId: how the new device learns the outcome. */
export interface DeviceRequestStatus {
  status: 'pending' | 'rejected' | 'approved';
  /** The registered card once approved, else null. */
  card: CardWire | null;
}

export interface CardsLookupResponse {
  cards: Record<string, CardWire[]>;
  /**
   * The cards' registration events in the transparency log, proven in the latest checkpoint
   * (docs/API.md "Card transparency log"). Absent from servers before the log.
   */
  log?: CardsLogProofs;
}

/** GET /v1/cards's `log` member. */
export interface CardsLogProofs {
  /** The latest checkpoint note (signed by the LogKey, with the cosignatures the service holds). */
  checkpoint: string;
  /** Its tree size. */
  size: number;
  /**
   * By card id, each card's registration event. `proof` is null when the event is newer than the
   * checkpoint. A card with no entry has no event in the log: a client must refuse it.
   */
  proofs: Record<string, LogLeafProof>;
}

/** A leaf of the log with its inclusion proof (each hash b64u, 32 bytes), RFC 9162 order. */
export interface LogLeafProof {
  index: number;
  /** b64u of the leaf bytes (shared/log-event.ts encoding). */
  leaf: string;
  proof: string[] | null;
}

/** GET /v1/log/key: the LogKey as clients and witnesses pin it. */
export interface LogKeyResponse {
  /** The checkpoints' origin line, the key's name. */
  origin: string;
  /** "<origin>+<key ID hex>+<base64(0x01 || public key)>" (golang.org/x/mod note format). */
  verifierKey: string;
}

/** GET /v1/log/inclusion. */
export interface LogInclusionResponse {
  index: number;
  size: number;
  leaf: string;
  proof: string[];
}

/** GET /v1/log/consistency. */
export interface LogConsistencyResponse {
  from: number;
  to: number;
  proof: string[];
}

/** GET /v1/log/events: an identity's events with seq >= since and index < size, by seq. */
export interface LogEventsResponse {
  identity: string;
  size: number;
  events: Array<{ index: number; seq: number; leaf: string; proof: string[]; authorizedBy?: LogEventAuthorization }>;
  /** More events below `size` follow: ask again with since = the last seq + 1. */
  more: boolean;
}

/**
 * The X-E2EE-Device proof that made a card event (docs/PROTOCOL.md 17.8): an active card of the
 * identity signed this request. Absent for events made without one (an identity's first device,
 * the open policy, servers before it).
 */
export interface LogEventAuthorization {
  /** The signer's card id (hex). */
  cardId: string;
  /** The proof's unix seconds. */
  timestamp: number;
  /** b64u Ed25519 signature (shared/device-proof.ts). */
  signature: string;
  /** The request as signed: method, path below the service's base URL, b64u body bytes. */
  method: string;
  path: string;
  body: string;
}

export interface AppKeyResponse {
  publicKey: string;
  appKeyId: string;
}

export interface HistoryPostRequest {
  conversationSid: string;
  messageSid: string;
  index: number;
  envelope: string;
  orgWrap: string;
}

export interface HistoryMessage {
  messageSid: string;
  index: number;
  author: string;
  envelope: string;
  rewrap: string;
}
export interface HistoryResponse {
  messages: HistoryMessage[];
  /** The server's byte cap ended the page before `limit` messages: more follow after the last index. */
  truncated: boolean;
}
/** DELETE /v1/history/:conversationSid/:messageSid: whether a copy was stored (false: none, or already deleted). */
export interface HistoryDeleteResponse {
  deleted: boolean;
}

/** Route paths, one home for both sides. */
export const ApiPath = {
  session: '/v1/session',
  twilioToken: '/v1/twilio-token',
  cards: '/v1/cards',
  card: (id: string) => `/v1/cards/${encodeURIComponent(id)}`,
  deviceRequests: '/v1/device-requests',
  deviceRequest: (cardId: string) => `/v1/device-requests/${encodeURIComponent(cardId)}`,
  approveDevice: (cardId: string) => `/v1/device-requests/${encodeURIComponent(cardId)}/approve`,
  rejectDevice: (cardId: string) => `/v1/device-requests/${encodeURIComponent(cardId)}/reject`,
  appKey: '/v1/app-key',
  orgCard: '/v1/org-card',
  history: '/v1/history',
  historyOf: (conversationSid: string) => `/v1/history/${encodeURIComponent(conversationSid)}`,
  historyMessage: (conversationSid: string, messageSid: string) => `/v1/history/${encodeURIComponent(conversationSid)}/${encodeURIComponent(messageSid)}`,
  preEvent: '/v1/twilio/pre-event',
  postEvent: '/v1/twilio/post-event',
  relay: '/v1/relay',
  /** The relay's media: POST uploads (relay token as Bearer); GET /:sid with a signed query downloads. */
  relayMedia: '/v1/relay/media',
  relayMediaContent: (mediaSid: string) => `/v1/relay/media/${encodeURIComponent(mediaSid)}`,
  logCheckpoint: '/v1/log/checkpoint',
  logKey: '/v1/log/key',
  logInclusion: '/v1/log/inclusion',
  logConsistency: '/v1/log/consistency',
  logEvents: '/v1/log/events',
  healthz: '/healthz',
  readyz: '/readyz',
} as const;
