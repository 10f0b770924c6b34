/**
 * The card transparency log's routes (docs/API.md "Card transparency log"). The checkpoint, the
 * LogKey and consistency proofs are public, as witnesses and auditors read them without an app
 * token; they hold hashes only. Inclusion proofs and an identity's events carry the leaves, which
 * name identities and cards, so they need an app token like the card lookups.
 */
import { Type, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { ApiPath, type LogConsistencyResponse, type LogEventAuthorization, type LogEventsResponse, type LogInclusionResponse, type LogKeyResponse } from '../../shared/api.js';
import { toB64u } from '../../shared/encoding.js';
import { E2EEError, ErrorCode } from '../../shared/errors.js';
import { rateLimitConfig } from '../rate-limits.js';
import { bearerAuth, CardIdSchema, errorResponses, IdentitySchema } from '../schemas.js';

/** Events per GET /v1/log/events: each carries a proof of up to 53 hashes, so a page stays under ~250 KB. */
export const MAX_LOG_EVENTS_PAGE = 100;

const Size = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
const Hashes = Type.Array(Type.String({ description: 'b64u, 32 bytes' }));
const AuthorizedBy = Type.Object(
  { cardId: Type.String(), timestamp: Type.Integer(), signature: Type.String(), method: Type.String(), path: Type.String(), body: Type.String() },
  { description: 'the X-E2EE-Device proof by an active card of the identity that made the event (b64u signature and body); absent when none did' },
);

export default async function logRoutes(scope: FastifyInstance): Promise<void> {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();
  const { config, store, log, authenticate } = app.e2ee;
  const publicLimit = rateLimitConfig(config.rateLimit.log, 'address');
  const lookupLimit = rateLimitConfig(config.rateLimit.lookup, 'identity');
  const keyResponse: LogKeyResponse = { origin: log.config.origin, verifierKey: log.config.verifierKey };

  app.get(
    ApiPath.logCheckpoint,
    {
      config: publicLimit,
      schema: {
        tags: ['log'],
        summary: 'The latest checkpoint (c2sp.org/tlog-checkpoint signed note), with the witness cosignatures the service holds',
        produces: ['text/plain'],
        response: { 200: Type.String(), ...errorResponses(429) },
      },
    },
    async (_request, reply) => {
      const { note } = await log.latest();
      return reply.type('text/plain; charset=utf-8').header('cache-control', 'no-cache').send(note);
    },
  );

  app.get(
    ApiPath.logKey,
    {
      config: publicLimit,
      schema: {
        tags: ['log'],
        summary: 'The LogKey that signs checkpoints (pin it out of band; this is a convenience like /v1/app-key)',
        response: { 200: Type.Object({ origin: Type.String(), verifierKey: Type.String() }), ...errorResponses(429) },
      },
    },
    async () => keyResponse,
  );

  app.get(
    ApiPath.logConsistency,
    {
      config: publicLimit,
      schema: {
        tags: ['log'],
        summary: 'Consistency proof between two tree sizes, each at most the latest checkpoint\'s',
        querystring: Type.Object({ from: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }), to: Size }, { additionalProperties: false }),
        response: { 200: Type.Object({ from: Type.Integer(), to: Type.Integer(), proof: Hashes }), ...errorResponses(400, 429) },
      },
    },
    async (request): Promise<LogConsistencyResponse> => {
      const { from, to } = request.query;
      await log.treeSize(to);
      return { from, to, proof: (await log.consistencyProof(from, to)).map(toB64u) };
    },
  );

  app.get(
    ApiPath.logInclusion,
    {
      preHandler: authenticate,
      config: lookupLimit,
      schema: {
        tags: ['log'],
        summary: 'A leaf (by index, or a card\'s registration event) with its inclusion proof in a tree size (default: the latest checkpoint\'s)',
        security: bearerAuth,
        querystring: Type.Object(
          { index: Type.Optional(Size), cardId: Type.Optional(CardIdSchema), size: Type.Optional(Size) },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ index: Type.Integer(), size: Type.Integer(), leaf: Type.String(), proof: Hashes }), ...errorResponses(400, 401, 404, 429) },
      },
    },
    async (request): Promise<LogInclusionResponse> => {
      const { index, cardId } = request.query;
      if ((index === undefined) === (cardId === undefined)) throw new E2EEError(ErrorCode.BAD_REQUEST, 'give one of index and cardId');
      const size = await log.treeSize(request.query.size);
      const event = cardId === undefined ? await store.logEvent(index!) : ((await store.cardEvents([cardId])).get(cardId) ?? null);
      if (!event || event.index >= size) {
        throw new E2EEError(ErrorCode.NOT_FOUND, cardId === undefined ? `no leaf ${index} in the tree of ${size}` : `the card has no event in the tree of ${size}`);
      }
      const [proven] = await log.prove([event], size);
      return { index: event.index, size, leaf: toB64u(event.leaf), proof: proven!.proof.map(toB64u) };
    },
  );

  app.get(
    ApiPath.logEvents,
    {
      preHandler: authenticate,
      config: lookupLimit,
      schema: {
        tags: ['log'],
        summary: 'An identity\'s events from a seq on, each with its inclusion proof in a tree size (default: the latest checkpoint\'s)',
        security: bearerAuth,
        querystring: Type.Object(
          {
            identity: IdentitySchema,
            since: Type.Optional(Size),
            size: Type.Optional(Size),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_LOG_EVENTS_PAGE })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            identity: Type.String(),
            size: Type.Integer(),
            events: Type.Array(Type.Object({ index: Type.Integer(), seq: Type.Integer(), leaf: Type.String(), proof: Hashes, authorizedBy: Type.Optional(AuthorizedBy) })),
            more: Type.Boolean(),
          }),
          ...errorResponses(400, 401, 429),
        },
      },
    },
    async (request): Promise<LogEventsResponse> => {
      const { identity, since = 0, limit = MAX_LOG_EVENTS_PAGE } = request.query;
      const size = await log.treeSize(request.query.size);
      const found = await store.identityEvents(identity, since, size, limit + 1);
      const proven = await log.prove(found.slice(0, limit), size);
      const kept = await store.cardAuthorizations([...new Set(proven.map(({ event }) => event.cardId))]);
      const authorizations = new Map(kept.map((a): [string, LogEventAuthorization] => [
        `${a.kind}:${a.cardId}`,
        { cardId: a.signerCardId, timestamp: a.timestamp, signature: toB64u(a.signature), method: a.method, path: a.path, body: toB64u(a.body) },
      ]));
      return {
        identity,
        size,
        events: proven.map(({ event, proof }) => {
          const authorizedBy = authorizations.get(`${event.kind}:${event.cardId}`);
          return { index: event.index, seq: event.seq, leaf: toB64u(event.leaf), proof: proof.map(toB64u), ...(authorizedBy ? { authorizedBy } : {}) };
        }),
        more: found.length > limit,
      };
    },
  );
}
