/**
 * Organization history (docs/PROTOCOL.md section 7, docs/API.md "POST /v1/history"): clients post each message's envelope with an
 * orgWrap (its CEK rewrapped to the OrgCard); the server checks that it is the conversation's
 * real message, that the orgWrap opens to the committed key, and that the original sender
 * signed it, then stores envelope + orgWrap (never plaintext). An edit, backed up the same way,
 * replaces the copy when it is a newer version of the same message (a higher signed edit counter,
 * bound to the same original, by the same author), so history holds each message's latest
 * version. Participants read history back with a rewrap for one of their own cards (when the
 * organization's `canReadHistory` rule lets them), and verify the original signature themselves.
 * Copies are stored under the newest OrgKey; earlier ones (ORG_KEY_PREVIOUS) still open the copies
 * and backups wrapped for them (server/org-key-ring.ts).
 * A removed message's copy is deleted (by the relay's removal, Twilio's post-event webhook, or a
 * participant's DELETE once the conversation no longer holds the message).
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { Type, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { ApiPath, type HistoryDeleteResponse, type HistoryMessage, type HistoryResponse } from '../../shared/api.js';
import { E2EEError, ErrorCode } from '../../shared/errors.js';
import { REWRAP_BYTES } from '../../shared/constants.js';
import { fromB64u } from '../../shared/encoding.js';
import {
  createRewrap,
  createRewrapper,
  decryptWithContentKey,
  parseEnvelope,
  payloadEdit,
  verifyDecrypted,
  type EditMarker,
  type ParsedEnvelope,
} from '../../shared/envelope.js';
import { MAX_ENVELOPE_TEXT_CHARS, MAX_HISTORY_PAGE_MESSAGES } from '../../shared/limits.js';
import { localSource, twilioSource, type ConversationSource } from '../conversation-source.js';
import { HISTORY_PAGES_AT_ONCE, HISTORY_PAGES_WAITING, HISTORY_PAGE_MAX_BYTES, HISTORY_REWRAP_CHUNK } from '../limits.js';
import { OrgKeyRing } from '../org-key-ring.js';
import type { HistoryReader } from '../plugin.js';
import { rateLimitConfig } from '../rate-limits.js';
import { CardIdSchema, bearerAuth, errorResponses } from '../schemas.js';
import type { HistoryRecord } from '../store/types.js';
import { WorkQueue } from '../work-queue.js';

/** The page size when the query gives no `limit`. */
export const DEFAULT_HISTORY_PAGE = 100;
/** Records read from the store at a time while a page is built (bounds memory under the byte cap). */
const STORE_BATCH = 64;
/** Seconds a reader turned away by a full page queue is asked to wait. */
const BUSY_RETRY_SECONDS = 1;

// In Twilio mode the sid becomes a segment of a REST URL, and "." or ".." would be resolved as a
// dot segment, turning the participants or message request into a request for another resource.
const ConversationSidSchema = Type.String({ minLength: 1, maxLength: 256, pattern: '^(?!\\.\\.?$)[A-Za-z0-9_.:-]+$' });
const MessageSidSchema = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' });
const HistoryPostSchema = Type.Object(
  {
    conversationSid: ConversationSidSchema,
    messageSid: MessageSidSchema,
    index: Type.Integer({ minimum: 0 }),
    envelope: Type.String({ minLength: 1, maxLength: MAX_ENVELOPE_TEXT_CHARS }),
    orgWrap: Type.String({ minLength: Math.ceil((REWRAP_BYTES * 4) / 3), maxLength: Math.ceil((REWRAP_BYTES * 4) / 3), pattern: '^[A-Za-z0-9_-]+$' }),
  },
  { additionalProperties: false },
);
const HistoryMessageSchema = Type.Object({
  messageSid: Type.String(),
  index: Type.Integer(),
  author: Type.String(),
  envelope: Type.String(),
  rewrap: Type.String({ description: 'b64u(E\' || wrapped CEK) for the requested card (PROTOCOL.md "Rewrap")' }),
});

export default async function historyRoutes(scope: FastifyInstance): Promise<void> {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();
  const { config, store, orgKey, authenticate, canReadHistory } = app.e2ee;
  const source: ConversationSource = config.twilio ? twilioSource(config.twilio) : localSource(store);
  const pageQueue = new WorkQueue(HISTORY_PAGES_AT_ONCE, HISTORY_PAGES_WAITING);
  // ORG_KEY and the keys before it (ORG_KEY_PREVIOUS): copies are stored under the newest.
  const ring = orgKey ? new OrgKeyRing(orgKey, config.previousOrgKeys) : null;

  function requireOrgKeys(): OrgKeyRing {
    if (!ring) throw new E2EEError(ErrorCode.HISTORY_DISABLED, 'this instance holds no OrgKey: history is served by the history service');
    return ring;
  }

  /** A stored copy's content key, opened with the OrgKey it records. */
  function openStored(record: HistoryRecord, parsed: ParsedEnvelope, keys: OrgKeyRing): Uint8Array {
    return keys.open(record.orgWrap, parsed, record.orgKeyId).cek;
  }

  async function requireParticipant(conversationSid: string, identity: string): Promise<void> {
    if (!(await source.isParticipant(conversationSid, identity))) {
      throw new E2EEError(ErrorCode.NOT_PARTICIPANT, 'you are not a participant of this conversation');
    }
  }

  /**
   * The organization's own rule (the plugin's canReadHistory), asked after the participant and
   * card checks. It fails closed: a throw or a non-boolean answer serves nothing (503, logged).
   */
  async function requireHistoryAccess(reader: HistoryReader, conversationSid: string, log: FastifyBaseLogger): Promise<void> {
    let allowed: unknown;
    try {
      allowed = await canReadHistory(reader, conversationSid);
    } catch (err) {
      log.error({ err, conversationSid }, 'canReadHistory threw: no history served');
      throw accessCheckFailed();
    }
    if (typeof allowed !== 'boolean') {
      log.error({ answer: typeof allowed, conversationSid }, 'canReadHistory answered neither true nor false: no history served');
      throw accessCheckFailed();
    }
    if (!allowed) throw new E2EEError(ErrorCode.FORBIDDEN, 'the organization does not let you read the history of this conversation');
  }

  /**
   * An edit that would replace the stored copy (a higher counter) must be a version of the same
   * message: bound (its signed editOf) to the original the copy is a version of, and signed by the
   * copy's author. The transport decides which envelope a message holds, so without this a newer
   * edit of another message, or anyone's envelope claiming this message, could take its place.
   * The original and the author are the same in every version stored, so checking before the
   * write holds for whichever version is there when it lands (only a first copy stored by a
   * concurrent post after this read goes uncompared).
   */
  async function requireSameMessage(conversationSid: string, messageSid: string, edit: EditMarker, signer: string, keys: OrgKeyRing): Promise<void> {
    const stored = await store.getHistory(conversationSid, messageSid);
    if (!stored || stored.editN >= edit.n) return; // nothing it would replace
    if (stored.author !== signer) {
      throw new E2EEError(ErrorCode.ENVELOPE_SENDER_NOT_AUTHOR, `the stored version is by "${stored.author}", this edit is signed by "${signer}"`);
    }
    const parsed = parseEnvelope(stored.envelope);
    const payload = decryptWithContentKey(parsed, openStored(stored, parsed, keys)).payload;
    // A version 1 payload signs no binding (PROTOCOL.md 5.3): there is no original to compare.
    if (payload.v !== 2) return;
    if ((payloadEdit(payload)?.of ?? payload.messageId) !== edit.of) {
      throw new E2EEError(ErrorCode.ENVELOPE_EDIT_MISMATCH, 'the edit is bound to another message than the one history holds');
    }
  }

  /**
   * Keeps a copy just stored only if the conversation still holds its message: a removal between
   * the post's check and the store found no copy to delete, and would leave this one behind. When
   * the check fails, the copy goes too (the client's outbox retries the post).
   */
  async function keepOnlyIfHeld(conversationSid: string, messageSid: string): Promise<void> {
    let held = false;
    try {
      held = (await source.getMessage(conversationSid, messageSid)) !== null;
    } finally {
      if (!held) await store.deleteHistory(conversationSid, messageSid);
    }
    if (!held) throw new E2EEError(ErrorCode.NOT_FOUND, 'the message was removed while it was being backed up');
  }

  /**
   * Messages with index > `after`, at most `limit` of them and HISTORY_PAGE_MAX_BYTES of
   * envelopes, each with a rewrap for `boxKey`. Yields to the event loop every
   * HISTORY_REWRAP_CHUNK messages, so other requests are served while a page is built.
   */
  async function historyPage(conversationSid: string, after: number, limit: number, boxKey: Uint8Array, keys: OrgKeyRing): Promise<HistoryResponse> {
    const messages: HistoryMessage[] = [];
    let bytes = 0;
    // One ephemeral key for the page: one X25519 for all its rewraps (see createRewrapper).
    let rewrap: ReturnType<typeof createRewrapper> | undefined;
    let last = after;
    while (messages.length < limit) {
      const batch = Math.min(STORE_BATCH, limit - messages.length);
      const records = await store.history(conversationSid, last, batch);
      for (const r of records) {
        if (messages.length > 0 && bytes + r.envelope.length > HISTORY_PAGE_MAX_BYTES) return { messages, truncated: true };
        bytes += r.envelope.length;
        rewrap ??= createRewrapper(boxKey);
        const parsed = parseEnvelope(r.envelope);
        messages.push({ messageSid: r.messageSid, index: r.index, author: r.author, envelope: r.envelope, rewrap: rewrap(openStored(r, parsed, keys), parsed) });
        if (messages.length % HISTORY_REWRAP_CHUNK === 0) await nextTurn();
      }
      if (records.length < batch) break;
      last = records[records.length - 1]!.index;
    }
    return { messages, truncated: false };
  }

  app.post(
    ApiPath.history,
    {
      preHandler: authenticate,
      config: rateLimitConfig(config.rateLimit.historyBackup, 'identity'),
      schema: {
        tags: ['history'],
        summary: 'Back up one message for the organization (the history webhook)',
        description:
          'The envelope must be the conversation\'s message body at that index; the orgWrap must open with the OrgKey to the key the ' +
          'envelope commits to; the original sender\'s signature must verify against the directory. Stores envelope and orgWrap only, ' +
          'and keeps them only if the conversation still holds the message afterwards (404 when it was removed meanwhile). ' +
          '201 when new; 200 `{stored: true, replaced: true}` when a newer version of the message (a higher signed edit counter) ' +
          'replaced the stored one; 200 `{stored: false}` when that version or a newer one is already stored.',
        security: bearerAuth,
        body: HistoryPostSchema,
        response: {
          200: Type.Union([Type.Object({ stored: Type.Literal(false) }), Type.Object({ stored: Type.Literal(true), replaced: Type.Literal(true) })]),
          201: Type.Object({ stored: Type.Literal(true) }),
          ...errorResponses(400, 401, 403, 404, 413, 429, 503),
        },
      },
    },
    async (request, reply) => {
      const keys = requireOrgKeys();
      const { conversationSid, messageSid, index, envelope } = request.body;
      await requireParticipant(conversationSid, request.e2eeIdentity);
      const message = await source.getMessage(conversationSid, messageSid);
      if (!message) throw new E2EEError(ErrorCode.NOT_FOUND, 'the conversation has no such message');
      if (message.body !== envelope || message.index !== index) {
        throw new E2EEError(ErrorCode.HISTORY_MISMATCH, 'the envelope and index must be exactly the message as the conversation holds it');
      }
      const parsed = parseEnvelope(envelope);
      // A client that has not seen the newest OrgCard yet wraps for a previous key (during a rotation).
      const opened = keys.open(request.body.orgWrap, parsed);
      const decrypted = decryptWithContentKey(parsed, opened.cek);
      const sender = await store.getCard(parsed.senderCardId);
      if (!sender) throw new E2EEError(ErrorCode.SENDER_CARD_UNKNOWN, 'the envelope names a sender card the directory does not know');
      // Revoked cards count for messages sent before the revocation (by the service's own clock).
      verifyDecrypted(parsed, decrypted, {
        senderCard: { id: sender.id, identity: sender.identity, signPublicKey: fromB64u(sender.signKey), revokedAt: sender.revokedAt },
        conversationSid,
        author: message.author,
        ...(message.dateCreatedMs !== null ? { sentAt: message.dateCreatedMs } : {}),
      });
      const edit = payloadEdit(decrypted.payload);
      if (edit) await requireSameMessage(conversationSid, messageSid, edit, sender.identity, keys);
      // Stored under the newest key only, so rewrap-history's work does not grow during a rotation.
      const orgWrap = opened.orgKeyId === keys.newestId ? request.body.orgWrap : createRewrap(opened.cek, parsed, keys.newest.keys.boxPublicKey);
      const outcome = await store.putHistory({
        conversationSid,
        messageSid,
        index,
        author: sender.identity,
        senderCardId: sender.id,
        envelope,
        orgWrap,
        orgKeyId: keys.newestId,
        storedAtMs: Date.now(),
        editN: edit?.n ?? 0,
      });
      if (outcome === 'created') {
        await keepOnlyIfHeld(conversationSid, messageSid);
        return reply.code(201).send({ stored: true });
      }
      // A replaced copy needs no second look: a removal that came first left no copy to replace
      // (the put created one, checked above), and a later one deletes whatever version is stored.
      return reply.code(200).send(outcome === 'replaced' ? { stored: true, replaced: true } : { stored: false });
    },
  );

  app.get(
    `${ApiPath.history}/:conversationSid`,
    {
      preHandler: authenticate,
      config: rateLimitConfig(config.rateLimit.historyRead, 'identity'),
      schema: {
        tags: ['history'],
        summary: 'Read history, each message with a rewrap for one of the caller\'s cards',
        description:
          `At most \`limit\` messages and ${HISTORY_PAGE_MAX_BYTES} bytes of envelopes: \`truncated\` is true when the byte cap ended the ` +
          'page early (more messages follow: ask again with `after` = the last index returned). Any participant may read, unless the ' +
          'organization\'s own rule (the plugin option `canReadHistory`) refuses (403 FORBIDDEN) or fails (503 HISTORY_ACCESS_CHECK_FAILED).',
        security: bearerAuth,
        params: Type.Object({ conversationSid: ConversationSidSchema }),
        querystring: Type.Object(
          {
            cardId: CardIdSchema,
            // Optional: the validator applies no defaults, so the handler does.
            // At most 2^53 - 1 (indexes stay far below): PostgreSQL's BIGINT refuses e.g. 1e20, which was a 500.
            after: Type.Optional(Type.Integer({ minimum: -1, maximum: Number.MAX_SAFE_INTEGER, default: -1, description: 'return messages with index > after' })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_HISTORY_PAGE_MESSAGES, default: DEFAULT_HISTORY_PAGE })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            messages: Type.Array(HistoryMessageSchema),
            truncated: Type.Boolean({ description: 'the byte cap ended the page before `limit` messages: continue after the last index' }),
          }),
          ...errorResponses(400, 401, 403, 429, 503),
        },
      },
    },
    async (request, reply): Promise<HistoryResponse> => {
      const keys = requireOrgKeys();
      const { conversationSid } = request.params;
      const { cardId, after = -1, limit = DEFAULT_HISTORY_PAGE } = request.query;
      await requireParticipant(conversationSid, request.e2eeIdentity);
      const card = await store.getCard(cardId);
      if (!card || card.identity !== request.e2eeIdentity || card.revokedAt !== null) {
        throw new E2EEError(ErrorCode.FORBIDDEN, 'cardId must be one of your active cards');
      }
      await requireHistoryAccess({ identity: request.e2eeIdentity, cardId }, conversationSid, request.log);
      return pageQueue.run(
        () => historyPage(conversationSid, after, limit, fromB64u(card.boxKey), keys),
        () => {
          reply.header('retry-after', String(BUSY_RETRY_SECONDS));
          return new E2EEError(ErrorCode.RATE_LIMITED, `the history service is busy, retry in ${BUSY_RETRY_SECONDS} second`);
        },
      );
    },
  );

  app.delete(
    `${ApiPath.history}/:conversationSid/:messageSid`,
    {
      preHandler: authenticate,
      config: rateLimitConfig(config.rateLimit.historyBackup, 'identity'),
      schema: {
        tags: ['history'],
        summary: 'Delete the history copy of a removed message',
        description:
          'Only once the conversation no longer holds the message (409 MESSAGE_NOT_REMOVED otherwise). Any participant may ask: the ' +
          'post-event webhook does the same for every removal, this only does it sooner or without it. `deleted` is false when no copy was stored.',
        security: bearerAuth,
        params: Type.Object({ conversationSid: ConversationSidSchema, messageSid: MessageSidSchema }),
        response: { 200: Type.Object({ deleted: Type.Boolean() }), ...errorResponses(400, 401, 403, 409, 429, 503) },
      },
    },
    async (request): Promise<HistoryDeleteResponse> => {
      requireOrgKeys();
      const { conversationSid, messageSid } = request.params;
      await requireParticipant(conversationSid, request.e2eeIdentity);
      if (await source.getMessage(conversationSid, messageSid)) {
        throw new E2EEError(ErrorCode.MESSAGE_NOT_REMOVED, 'the conversation still holds this message: its history copy stays until it is removed');
      }
      return { deleted: await store.deleteHistory(conversationSid, messageSid) };
    },
  );
}

function accessCheckFailed(): E2EEError {
  return new E2EEError(ErrorCode.HISTORY_ACCESS_CHECK_FAILED, 'the organization\'s history access check failed: try again later');
}
