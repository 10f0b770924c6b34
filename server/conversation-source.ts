/**
 * Where the server learns who takes part in a conversation and what a message's body is, to
 * authorize history reads and check history posts: the local relay's store in mode "local",
 * Twilio's REST API in mode "twilio" (participants cached briefly; Twilio is the authority).
 * Twilio's failures are E2EEError TWILIO_UNAVAILABLE, with the cause attached.
 */
import twilio from 'twilio';
import { E2EEError, ErrorCode } from '../shared/errors.js';
import type { TwilioConfig } from './config.js';
import type { Store } from './store/types.js';

export interface SourceMessage {
  author: string | null;
  body: string | null;
  index: number;
  /** Unix ms, the conversations service's own timestamp. */
  dateCreatedMs: number | null;
}

export interface ConversationSource {
  isParticipant(conversationSid: string, identity: string): Promise<boolean>;
  /** The message as the conversations service holds it, or null when it has no such message. */
  getMessage(conversationSid: string, messageSid: string): Promise<SourceMessage | null>;
}

export function localSource(store: Store): ConversationSource {
  return {
    isParticipant: (conversationSid, identity) => store.isParticipant(conversationSid, identity),
    async getMessage(conversationSid, messageSid) {
      const m = await store.getMessage(conversationSid, messageSid);
      return m && { author: m.author, body: m.body, index: m.index, dateCreatedMs: m.dateUpdatedMs ?? m.dateCreatedMs };
    },
  };
}

/** How long a conversation's participant list is reused; a miss older than RECHECK_MS asks again. */
const PARTICIPANTS_CACHE_MS = 30_000;
const RECHECK_MS = 2_000;
/** Conversations whose participants are kept; the oldest fetched is dropped first. */
const PARTICIPANTS_CACHE_ENTRIES = 10_000;

function isNotFound(err: unknown): boolean {
  return (err as { status?: number })?.status === 404;
}

/** Twilio failed: a catalogue error, which the HTTP layer answers with its status. */
function unavailable(err: unknown): E2EEError {
  const status = (err as { status?: number })?.status;
  return new E2EEError(ErrorCode.TWILIO_UNAVAILABLE, `Twilio did not answer as expected${status ? ` (status ${status})` : ''}; try again`, { cause: err });
}

export function twilioSource(credentials: TwilioConfig): ConversationSource {
  // keepAlive: false, or a pooled socket can hold a request open indefinitely behind some proxies.
  const client = twilio(credentials.apiKey, credentials.apiSecret, { accountSid: credentials.accountSid, keepAlive: false });
  const service = () => client.conversations.v1.services(credentials.conversationsServiceSid);
  const cache = new Map<string, { identities: Set<string>; fetchedAt: number }>();

  async function participants(conversationSid: string): Promise<Set<string>> {
    try {
      const list = await service().conversations(conversationSid).participants.list({ limit: 1000 });
      const identities = new Set(list.map((p) => p.identity).filter((i): i is string => typeof i === 'string'));
      cache.delete(conversationSid); // re-insert: Map order is then oldest-fetched first
      cache.set(conversationSid, { identities, fetchedAt: Date.now() });
      if (cache.size > PARTICIPANTS_CACHE_ENTRIES) cache.delete(cache.keys().next().value!);
      return identities;
    } catch (err) {
      if (isNotFound(err)) return new Set();
      throw unavailable(err);
    }
  }

  return {
    async isParticipant(conversationSid, identity) {
      const cached = cache.get(conversationSid);
      const age = cached ? Date.now() - cached.fetchedAt : Infinity;
      if (cached && age < PARTICIPANTS_CACHE_MS && (cached.identities.has(identity) || age < RECHECK_MS)) {
        return cached.identities.has(identity);
      }
      return (await participants(conversationSid)).has(identity);
    },
    async getMessage(conversationSid, messageSid) {
      try {
        const m = await service().conversations(conversationSid).messages(messageSid).fetch();
        const date = m.dateUpdated ?? m.dateCreated;
        return { author: m.author, body: m.body, index: m.index, dateCreatedMs: date ? date.getTime() : null };
      } catch (err) {
        if (isNotFound(err)) return null;
        throw unavailable(err);
      }
    },
  };
}
