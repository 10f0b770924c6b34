/**
 * New devices waiting for approval (NEW_DEVICE_POLICY=approval, docs/API.md "Adding a device"):
 * an existing device lists them and approves or rejects one with its device proof; the new
 * device polls its request's status with its app token alone.
 */
import { Type, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { ApiPath, type DeviceRequestStatus, type DeviceRequestsResponse } from '../../shared/api.js';
import { E2EEError, ErrorCode } from '../../shared/errors.js';
import { parseCardRequest } from '../../shared/card.js';
import { deviceAuthorization, keepRawJsonBodies, PendingDeviceSchema, requireDevice } from '../device-auth.js';
import { rateLimitConfig } from '../rate-limits.js';
import { CardIdSchema, CardSchema, bearerAuth, errorResponses } from '../schemas.js';
import { now, storeCard, toPendingDevice, toWire } from './cards.js';

const RequestParams = Type.Object({ cardId: CardIdSchema });
const StatusSchema = Type.Object(
  {
    status: Type.Union([Type.Literal('pending'), Type.Literal('rejected'), Type.Literal('approved')]),
    card: Type.Union([CardSchema, Type.Null()], { description: 'the registered card once approved' }),
  },
  { title: 'DeviceRequestStatus' },
);
const proofRequired = 'Needs an X-E2EE-Device proof by an active card of the caller.';

export default async function deviceRequestRoutes(scope: FastifyInstance): Promise<void> {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();
  const { store, appKey, authenticate } = app.e2ee;
  keepRawJsonBodies(scope); // device proofs sign the body bytes
  const changeLimit = rateLimitConfig(app.e2ee.config.rateLimit.cardRegistration, 'identity');
  const lookupLimit = rateLimitConfig(app.e2ee.config.rateLimit.lookup, 'identity');
  const notPending = () => new E2EEError(ErrorCode.NOT_FOUND, 'no such pending device request (unknown, expired, or already decided)');

  app.get(
    ApiPath.deviceRequests,
    {
      preHandler: authenticate,
      config: lookupLimit,
      schema: {
        tags: ['cards'],
        summary: 'New devices of the caller\'s identity waiting for approval',
        description: proofRequired,
        security: bearerAuth,
        response: { 200: Type.Object({ requests: Type.Array(PendingDeviceSchema) }), ...errorResponses(401, 403, 429) },
      },
    },
    async (request): Promise<DeviceRequestsResponse> => {
      await requireDevice(request, store);
      return { requests: (await store.pendingDevices(request.e2eeIdentity, now())).map(toPendingDevice) };
    },
  );

  app.get(
    `${ApiPath.deviceRequests}/:cardId`,
    {
      preHandler: authenticate,
      config: lookupLimit,
      schema: {
        tags: ['cards'],
        summary: 'The outcome of one of the caller\'s device requests (polled by the new device)',
        security: bearerAuth,
        params: RequestParams,
        response: { 200: StatusSchema, ...errorResponses(400, 401, 404, 429) },
      },
    },
    async (request): Promise<DeviceRequestStatus> => {
      const { cardId } = request.params;
      // The card first: an approval stores it before it ends the request.
      const card = await store.getCard(cardId);
      if (card?.identity === request.e2eeIdentity) return { status: 'approved', card: toWire(card) };
      const pending = await store.getPendingDevice(cardId, now());
      if (pending?.identity === request.e2eeIdentity) return { status: pending.status, card: null };
      throw notPending();
    },
  );

  app.post(
    `${ApiPath.deviceRequests}/:cardId/approve`,
    {
      preHandler: authenticate,
      config: changeLimit,
      schema: {
        tags: ['cards'],
        summary: 'Approve a new device: countersign and store its card',
        description: proofRequired,
        security: bearerAuth,
        params: RequestParams,
        response: { 201: CardSchema, ...errorResponses(400, 401, 403, 404, 409, 429) },
      },
    },
    async (request, reply) => {
      const approver = await requireDevice(request, store);
      const { cardId } = request.params;
      const pending = await store.getPendingDevice(cardId, now());
      if (pending?.identity !== request.e2eeIdentity || pending.status !== 'pending') throw notPending();
      // Checked when it was asked for; parsed again so the card is built from the stored bytes only.
      const card = parseCardRequest({ snapshot: pending.snapshot, selfSignature: pending.selfSignature });
      // Stored before the request ends, so a poll never finds neither (and a failed store leaves the request to approve again).
      // The approver's proof is kept with the card: the identity's other devices check it was one of them.
      const wire = await storeCard(store, appKey, card, { firstOnly: false, log: request.log, authorization: deviceAuthorization(request, approver) });
      await store.takePendingDevice(cardId, request.e2eeIdentity, now());
      return reply.code(201).send(wire!);
    },
  );

  app.post(
    `${ApiPath.deviceRequests}/:cardId/reject`,
    {
      preHandler: authenticate,
      config: changeLimit,
      schema: {
        tags: ['cards'],
        summary: 'Reject a new device (its request answers "rejected" until it expires)',
        description: proofRequired,
        security: bearerAuth,
        params: RequestParams,
        response: { 200: StatusSchema, ...errorResponses(400, 401, 403, 404, 429) },
      },
    },
    async (request): Promise<DeviceRequestStatus> => {
      const rejecter = await requireDevice(request, store);
      const rejected = await store.rejectPendingDevice(request.params.cardId, request.e2eeIdentity, now());
      if (!rejected) throw notPending();
      request.log.warn({ cardId: rejected.cardId, rejectedBy: rejecter.id }, 'new device rejected');
      return { status: 'rejected', card: null };
    },
  );
}
