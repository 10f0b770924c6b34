/**
 * The local conversations relay's WebSocket protocol (local mode, no Twilio account). JSON text
 * frames. The client's first frame is `auth`; every request carries an `id` that its response
 * echoes; the server pushes events without an id. The relay stores bodies exactly as given: it
 * only ever sees envelopes.
 */

export interface RelayConversationData {
  sid: string;
  uniqueName: string | null;
  friendlyName: string | null;
  attributes: unknown;
  createdBy: string;
  dateCreated: number; // unix ms
}

export interface RelayParticipantData {
  sid: string;
  conversationSid: string;
  identity: string;
  type: 'chat';
  dateCreated: number;
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
}

/** Requests: op name → [params, result]. */
export interface RelayOps {
  auth: [{ token: string }, { identity: string }];
  updateToken: [{ token: string }, { identity: string }];
  createConversation: [{ uniqueName?: string; friendlyName?: string; attributes?: unknown }, RelayConversationData];
  getConversation: [{ sid: string }, RelayConversationData];
  listConversations: [Record<string, never>, RelayConversationData[]];
  join: [{ conversationSid: string }, RelayParticipantData];
  add: [{ conversationSid: string; identity: string }, RelayParticipantData];
  removeParticipant: [{ conversationSid: string; identity: string }, { removed: boolean }];
  getParticipants: [{ conversationSid: string }, RelayParticipantData[]];
  sendMessage: [{ conversationSid: string; body: string; attributes?: unknown }, RelayMessageData];
  getMessages: [
    { conversationSid: string; pageSize: number; anchor?: number; direction: 'backwards' | 'forward' },
    { items: RelayMessageData[]; hasPrev: boolean; hasNext: boolean },
  ];
  updateMessageBody: [{ conversationSid: string; messageSid: string; body: string }, RelayMessageData];
}

export type RelayOp = keyof RelayOps;

export interface RelayRequest<K extends RelayOp = RelayOp> {
  id: number;
  op: K;
  params: RelayOps[K][0];
}

export type RelayResponse =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: { code: string; message: string } };

/** Server pushes. conversationAdded: the identity was added to a conversation. */
export interface RelayEvents {
  conversationAdded: RelayConversationData;
  conversationRemoved: { conversationSid: string };
  participantJoined: RelayParticipantData;
  participantLeft: RelayParticipantData;
  messageAdded: RelayMessageData;
  messageUpdated: RelayMessageData;
  tokenAboutToExpire: Record<string, never>;
}

export type RelayEventName = keyof RelayEvents;

export interface RelayPush<K extends RelayEventName = RelayEventName> {
  event: K;
  data: RelayEvents[K];
}

/** Relay limits, mirroring Twilio's where Twilio has one. */
export const RELAY_LIMITS = {
  bodyChars: 32 * 1024,
  attributesBytes: 4 * 1024,
  identityChars: 256,
  participantsPerConversation: 1000,
  pageSize: 100,
  frameBytes: 64 * 1024,
} as const;
