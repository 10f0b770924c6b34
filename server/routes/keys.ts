/**
 * Public keys anyone may fetch: the AppKey (clients should pin it in their configuration, not
 * trust this route alone) and the OrgCard (history backups are wrapped for its box key).
 */
import { Type, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { ApiPath, type AppKeyResponse } from '../../shared/api.js';
import { E2EEError, ErrorCode, errorStatus } from '../../shared/errors.js';
import { toB64u } from '../../shared/encoding.js';
import { CardSchema, errorResponses } from '../schemas.js';

export default async function keyRoutes(scope: FastifyInstance): Promise<void> {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();
  const { appKey, orgCard } = app.e2ee;
  const appKeyResponse: AppKeyResponse = { publicKey: toB64u(appKey.publicKey), appKeyId: appKey.appKeyId };

  app.get(
    ApiPath.appKey,
    {
      schema: {
        tags: ['keys'],
        summary: 'The AppKey public key that countersigns cards',
        response: { 200: Type.Object({ publicKey: Type.String({ description: 'b64u Ed25519 public key' }), appKeyId: Type.String() }) },
      },
    },
    async () => appKeyResponse,
  );

  app.get(
    ApiPath.orgCard,
    {
      schema: {
        tags: ['keys'],
        summary: 'The OrgCard (identity org:<name>), countersigned by the AppKey',
        response: { 200: CardSchema, ...errorResponses(errorStatus(ErrorCode.HISTORY_DISABLED)) },
      },
    },
    async () => {
      if (!orgCard) throw new E2EEError(ErrorCode.HISTORY_DISABLED, 'this server has no ORG_KEY: organization history is disabled');
      return orgCard;
    },
  );
}
