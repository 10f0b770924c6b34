/**
 * HTTP API types shared by the server and the client (docs/API.md). Bodies are JSON;
 * every error is `{"error": {"code", "message"}}` with a 4xx/5xx status and a stable code.
 */
import type { CardWire } from './card.js';

/** Stable HTTP error codes, besides the core's card codes (CARD_*, ENCODING_INVALID) and envelope codes. */
export const ApiErrorCode = {
  BAD_REQUEST: 'BAD_REQUEST', // malformed JSON, schema validation failure
  UNSUPPORTED_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  UNAUTHORIZED: 'UNAUTHORIZED', // missing, malformed, expired or wrongly signed bearer token
  FORBIDDEN: 'FORBIDDEN', // authenticated, but not allowed (not the owner, not a participant)
  NOT_FOUND: 'NOT_FOUND',
  RATE_LIMITED: 'RATE_LIMITED',
  CARD_STALE: 'CARD_STALE', // createdAt more than 10 minutes from the server clock
  CARD_EXISTS: 'CARD_EXISTS',
  KEY_IN_USE: 'KEY_IN_USE', // sign or box key already registered
  TOO_MANY_CARDS: 'TOO_MANY_CARDS', // identity already has the maximum of active cards
  DEVICE_PROOF_REQUIRED: 'DEVICE_PROOF_REQUIRED', // 401: the route needs an X-E2EE-Device proof
  DEVICE_PROOF_INVALID: 'DEVICE_PROOF_INVALID', // 401: malformed header, unknown card or wrong signature
  DEVICE_PROOF_EXPIRED: 'DEVICE_PROOF_EXPIRED', // 401: the proof's timestamp is too far from the server clock
  DEVICE_REVOKED: 'DEVICE_REVOKED', // 403: the proof's card is revoked
  TOO_MANY_PENDING_DEVICES: 'TOO_MANY_PENDING_DEVICES', // 409: the identity has the maximum of pending device requests
  HISTORY_DISABLED: 'HISTORY_DISABLED', // this instance holds no OrgKey
  NOT_PARTICIPANT: 'NOT_PARTICIPANT', // the caller is not a participant of the conversation
  HISTORY_MISMATCH: 'HISTORY_MISMATCH', // the posted envelope or index is not the conversation's message
  SENDER_CARD_UNKNOWN: 'SENDER_CARD_UNKNOWN', // the envelope names a card the directory never issued
  ENVELOPE_REQUIRED: 'ENVELOPE_REQUIRED', // pre-event webhook: a message body that is not an envelope
  TWILIO_UNAVAILABLE: 'TWILIO_UNAVAILABLE',
  STORE_UNAVAILABLE: 'STORE_UNAVAILABLE',
  INTERNAL: 'INTERNAL',
} as const;
export type ApiErrorCode = (typeof ApiErrorCode)[keyof typeof ApiErrorCode];

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
  preEvent: '/v1/twilio/pre-event',
  relay: '/v1/relay',
  healthz: '/healthz',
  readyz: '/readyz',
} as const;
