/**
 * The card directory (docs/PROTOCOL.md section 4, docs/API.md "POST /v1/cards"): register (validate, countersign, store),
 * look up active cards by identity (with each card's proof in the transparency log), fetch one card (revoked too, to verify old messages), revoke.
 */
import { Type, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import type { FastifyBaseLogger } from 'fastify';
import { ApiPath, type CardsLogProofs, type CardsLookupResponse, type PendingDevice } from '../../shared/api.js';
import { toB64u } from '../../shared/encoding.js';
import { E2EEError, ErrorCode } from '../../shared/errors.js';
import { countersignCard, parseCardRequest, type CardWire, type SelfSignedCard } from '../../shared/card.js';
import type { AppKey } from '../../shared/keys.js';
import {
  deviceAuthorization,
  keepRawJsonBodies,
  MAX_PENDING_DEVICES_PER_IDENTITY,
  PENDING_DEVICE_TTL_SECONDS,
  PendingDeviceSchema,
  provenDevice,
  requireDevice,
} from '../device-auth.js';
import { CARD_MAX_CLOCK_SKEW_SECONDS, MAX_LOOKUP_IDENTITIES, ORG_IDENTITY_PREFIX } from '../../shared/limits.js';
import { MAX_ACTIVE_CARDS_PER_IDENTITY } from '../limits.js';
import type { TransparencyLog } from '../log.js';
import { rateLimitConfig } from '../rate-limits.js';
import { CardIdSchema, CardSchema, IdentitySchema, RegisterCardSchema, bearerAuth, errorResponses } from '../schemas.js';
import type { CardAuthorization, PendingDeviceRecord, Store, StoredCard } from '../store/types.js';

export function toWire(card: StoredCard): CardWire {
  return {
    id: card.id,
    snapshot: card.snapshot,
    selfSignature: card.selfSignature,
    appSignature: card.appSignature,
    appKeyId: card.appKeyId,
    revokedAt: card.revokedAt,
  };
}

export function toPendingDevice(record: PendingDeviceRecord): PendingDevice {
  const { cardId, identity, deviceName, snapshot, selfSignature, requestedAt, expiresAt, status } = record;
  return { cardId, identity, deviceName, snapshot, selfSignature, requestedAt, expiresAt, status };
}

export const now = (): number => Math.floor(Date.now() / 1000);

/** Why a store refused a card, as the client sees it. */
const REFUSALS = {
  CARD_EXISTS: [ErrorCode.CARD_EXISTS, 'this card is already registered'],
  KEY_IN_USE: [ErrorCode.KEY_IN_USE, 'the sign or box key of this card is already registered (every card needs fresh keys)'],
  TOO_MANY_CARDS: [ErrorCode.TOO_MANY_CARDS, `an identity may have at most ${MAX_ACTIVE_CARDS_PER_IDENTITY} active cards; revoke one first`],
} as const;

/**
 * Countersigns and stores a checked card; with `firstOnly`, only as the identity's first active
 * card (null when it has one: the card then needs an existing device's approval).
 */
export async function storeCard(
  store: Store,
  appKey: AppKey,
  card: SelfSignedCard,
  options: { firstOnly: boolean; log: FastifyBaseLogger; authorization?: CardAuthorization },
): Promise<CardWire | null> {
  const { identity, deviceId, createdAt, previousCardId } = card.fields;
  const registeredAt = now();
  const wire = countersignCard(card, appKey);
  const result = await store.registerCard(
    { ...wire, identity, deviceId, signKey: card.fields.signKey, boxKey: card.fields.boxKey, createdAt, registeredAt, revokedAt: null },
    {
      maxActivePerIdentity: MAX_ACTIVE_CARDS_PER_IDENTITY,
      now: registeredAt,
      firstOnly: options.firstOnly,
      ...(previousCardId ? { supersedes: previousCardId } : {}),
      ...(options.authorization ? { authorization: options.authorization } : {}),
    },
  );
  if (!result.ok) {
    if (result.reason === 'HAS_ACTIVE_CARDS') return null;
    const [code, message] = REFUSALS[result.reason];
    throw new E2EEError(code, message);
  }
  options.log.info({ cardId: wire.id, superseded: result.superseded, approvedBy: options.authorization?.signerCardId ?? null }, 'card registered');
  return wire;
}

const CardParams = Type.Object({ id: CardIdSchema });

const CardsLogSchema = Type.Object(
  {
    checkpoint: Type.String({ description: 'the latest checkpoint note, as GET /v1/log/checkpoint serves it' }),
    size: Type.Integer(),
    proofs: Type.Object(
      {},
      {
        additionalProperties: Type.Object({
          index: Type.Integer(),
          leaf: Type.String({ description: 'b64u leaf bytes: the card\'s registration event' }),
          proof: Type.Union([Type.Array(Type.String()), Type.Null()], { description: 'b64u hashes; null while the event is newer than the checkpoint' }),
        }),
        description: 'by card id; a card with no entry has no event in the log',
      },
    ),
  },
  { description: 'each card\'s registration event in the transparency log, proven in the latest checkpoint' },
);

/** The log member of a lookup: each card's registration event, proven in the latest checkpoint when it is in it. */
async function cardProofs(log: TransparencyLog, store: Store, cardIds: readonly string[]): Promise<CardsLogProofs> {
  const [checkpoint, events] = [await log.latest(), await store.cardEvents(cardIds)];
  const proven = new Map((await log.prove([...events.values()], checkpoint.size)).map(({ event, proof }) => [event.cardId, proof]));
  const proofs = Object.fromEntries(
    [...events.values()].map((e) => [e.cardId, { index: e.index, leaf: toB64u(e.leaf), proof: proven.get(e.cardId)?.map(toB64u) ?? null }]),
  );
  return { checkpoint: checkpoint.note, size: checkpoint.size, proofs };
}

export default async function cardRoutes(scope: FastifyInstance): Promise<void> {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();
  const { config, store, appKey, authenticate, log } = app.e2ee;
  keepRawJsonBodies(scope); // device proofs sign the body bytes
  const registrationLimit = rateLimitConfig(config.rateLimit.cardRegistration, 'identity');
  const lookupLimit = rateLimitConfig(config.rateLimit.lookup, 'identity');

  app.post(
    ApiPath.cards,
    {
      preHandler: authenticate,
      config: registrationLimit,
      schema: {
        tags: ['cards'],
        summary: 'Register a card for one of the caller\'s devices',
        description:
          'Validates the snapshot and self-signature, that the card belongs to the caller, that createdAt is within 10 minutes ' +
          `of the server clock and that its keys were never registered, then countersigns and stores it. A card whose ` +
          'previousCardId names an active card of the same identity revokes that card. When the identity already has an active ' +
          'card, the request needs an X-E2EE-Device proof of one of them, unless NEW_DEVICE_POLICY is open; without it the ' +
          'answer is 202 with a pending request that an existing device approves (POST /v1/device-requests/{cardId}/approve).',
        security: bearerAuth,
        body: RegisterCardSchema,
        response: { 201: CardSchema, 202: PendingDeviceSchema, ...errorResponses(400, 401, 403, 409, 413, 415, 429) },
      },
    },
    async (request, reply) => {
      const approver = await provenDevice(request, store);
      // Self-signature, members and sizes: the core's checks, E2EEError (400, CARD_*) on failure.
      const card = parseCardRequest(request.body);
      const { identity, createdAt } = card.fields;
      if (identity !== request.e2eeIdentity) {
        throw new E2EEError(ErrorCode.FORBIDDEN, 'the card\'s identity is not the authenticated identity');
      }
      if (identity.startsWith(ORG_IDENTITY_PREFIX)) {
        throw new E2EEError(ErrorCode.FORBIDDEN, `identities starting with "${ORG_IDENTITY_PREFIX}" are reserved for organization cards`);
      }
      const requestedAt = now();
      if (Math.abs(requestedAt - createdAt) > CARD_MAX_CLOCK_SKEW_SECONDS) {
        throw new E2EEError(ErrorCode.CARD_STALE, `card createdAt must be within ${CARD_MAX_CLOCK_SKEW_SECONDS / 60} minutes of the server clock`);
      }
      // An identity's first device needs no approval; later ones need a proof, or the open policy.
      const firstOnly = approver === null && config.newDevicePolicy === 'approval';
      const wire = await storeCard(store, appKey, card, { firstOnly, log: request.log, ...(approver ? { authorization: deviceAuthorization(request, approver) } : {}) });
      if (wire) return reply.code(201).send(wire);

      const pending = await store.addPendingDevice(
        {
          cardId: card.id,
          identity,
          deviceName: card.fields.deviceName,
          signKey: card.fields.signKey,
          snapshot: request.body.snapshot,
          selfSignature: request.body.selfSignature,
          requestedAt,
          expiresAt: requestedAt + PENDING_DEVICE_TTL_SECONDS,
          status: 'pending',
        },
        { maxPerIdentity: MAX_PENDING_DEVICES_PER_IDENTITY, now: requestedAt },
      );
      if (pending === 'TOO_MANY_PENDING') {
        throw new E2EEError(ErrorCode.TOO_MANY_PENDING_DEVICES, `an identity may have at most ${MAX_PENDING_DEVICES_PER_IDENTITY} devices waiting for approval`);
      }
      request.log.warn({ cardId: card.id }, 'new device waits for approval by an existing device');
      return reply.code(202).send(toPendingDevice(pending));
    },
  );

  app.get(
    ApiPath.cards,
    {
      preHandler: authenticate,
      config: lookupLimit,
      schema: {
        tags: ['cards'],
        summary: 'Active cards of up to 100 identities',
        security: bearerAuth,
        querystring: Type.Object(
          { identity: Type.Array(IdentitySchema, { minItems: 1, maxItems: MAX_LOOKUP_IDENTITIES, description: 'repeat for several identities' }) },
          { additionalProperties: false },
        ),
        // Not Type.Record: its pattern "^(.*)$" does not match a key with a line break, and the
        // serializer silently dropped such an identity from the answer.
        response: {
          200: Type.Object({ cards: Type.Object({}, { additionalProperties: Type.Array(CardSchema) }), log: Type.Optional(CardsLogSchema) }),
          ...errorResponses(400, 401, 429),
        },
      },
    },
    async (request): Promise<CardsLookupResponse> => {
      const identities = [...new Set(request.query.identity)];
      const found = await store.activeCards(identities);
      const cards = [...found.values()].flat();
      // fromEntries defines own properties, so even an identity named "__proto__" is just a key.
      return {
        cards: Object.fromEntries(identities.map((identity) => [identity, (found.get(identity) ?? []).map(toWire)])),
        log: await cardProofs(log, store, cards.map((c) => c.id)),
      };
    },
  );

  app.get(
    `${ApiPath.cards}/:id`,
    {
      preHandler: authenticate,
      config: lookupLimit,
      schema: {
        tags: ['cards'],
        summary: 'One card by id, revoked or not (to verify messages sent before a revocation)',
        security: bearerAuth,
        params: CardParams,
        response: { 200: CardSchema, ...errorResponses(400, 401, 404, 429) },
      },
    },
    async (request) => {
      const card = await store.getCard(request.params.id);
      if (!card) throw new E2EEError(ErrorCode.NOT_FOUND, 'no such card');
      return toWire(card);
    },
  );

  app.delete(
    `${ApiPath.cards}/:id`,
    {
      preHandler: authenticate,
      config: registrationLimit,
      schema: {
        tags: ['cards'],
        summary: 'Revoke one of the caller\'s cards',
        description: 'Needs an X-E2EE-Device proof by an active card of the caller (any of them, the revoked one included).',
        security: bearerAuth,
        params: CardParams,
        response: { 200: CardSchema, ...errorResponses(400, 401, 403, 404, 429) },
      },
    },
    async (request) => {
      const revoker = await requireDevice(request, store);
      const card = await store.getCard(request.params.id);
      if (!card) throw new E2EEError(ErrorCode.NOT_FOUND, 'no such card');
      if (card.identity !== request.e2eeIdentity) throw new E2EEError(ErrorCode.FORBIDDEN, 'only the card\'s identity may revoke it');
      const revoked = await store.revokeCard(card.id, now(), deviceAuthorization(request, revoker));
      if (!revoked) throw new E2EEError(ErrorCode.NOT_FOUND, 'no such card');
      request.log.info({ cardId: card.id, revokedBy: revoker.id }, 'card revoked');
      return toWire(revoked);
    },
  );
}
