/**
 * POST /v1/session (demo mode only): an app token for any identity, with no proof of anything.
 * Outside demo mode the route does not exist (404): tokens come from the team's identity provider.
 */
import { Type, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { ApiPath } from '../../shared/api.js';
import { E2EEError, ErrorCode } from '../../shared/errors.js';
import { ORG_IDENTITY_PREFIX } from '../../shared/limits.js';
import { rateLimitConfig } from '../rate-limits.js';
import { IdentitySchema, errorResponses } from '../schemas.js';

export default async function sessionRoutes(scope: FastifyInstance): Promise<void> {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();
  const { config, signSession } = app.e2ee;
  if (!config.demoMode || !signSession) return;

  app.post(
    ApiPath.session,
    {
      config: rateLimitConfig(config.rateLimit.session, 'address'),
      schema: {
        tags: ['auth'],
        summary: 'Demo mode only: an app token for an identity',
        body: Type.Object({ identity: IdentitySchema }, { additionalProperties: false }),
        response: { 200: Type.Object({ token: Type.String() }), ...errorResponses(400, 413, 415, 429) },
      },
    },
    async (request) => {
      const { identity } = request.body;
      if (identity.startsWith(ORG_IDENTITY_PREFIX)) {
        throw new E2EEError(ErrorCode.BAD_REQUEST, `identities starting with "${ORG_IDENTITY_PREFIX}" are reserved for organization cards`);
      }
      return { token: signSession(identity) };
    },
  );
}
