/**
 * GET /v1/twilio-token: the token a client needs to reach its conversations, for the
 * authenticated identity only (never an identity from the request).
 * - Twilio mode: a Twilio AccessToken with a ChatGrant for the Conversations service.
 * - Local mode (no Twilio credentials): a relay token and the relay's WebSocket URL (under the
 *   plugin's prefix, where the relay route is).
 */
import { Type, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import twilio from 'twilio';
import { ApiPath, type TwilioTokenResponse } from '../../shared/api.js';
import type { TwilioConfig } from '../config.js';
import { relayUrl, signRelayToken } from '../relay-token.js';
import { bearerAuth, errorResponses } from '../schemas.js';

/** A Twilio Conversations access token (HS256 JWT signed with the API key secret; no network). */
export function twilioAccessToken(credentials: TwilioConfig, identity: string, ttl: number): string {
  const { AccessToken } = twilio.jwt;
  const token = new AccessToken(credentials.accountSid, credentials.apiKey, credentials.apiSecret, { identity, ttl });
  token.addGrant(new AccessToken.ChatGrant({ serviceSid: credentials.conversationsServiceSid }));
  return token.toJwt();
}

const common = { token: Type.String(), identity: Type.String(), ttl: Type.Integer({ description: 'seconds' }) };
const TokenResponseSchema = Type.Union([
  Type.Object({ mode: Type.Literal('twilio'), ...common }),
  Type.Object({ mode: Type.Literal('local'), ...common, relayUrl: Type.String({ description: 'WebSocket URL of the local relay' }) }),
]);

export default async function tokenRoutes(scope: FastifyInstance): Promise<void> {
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();
  const { config, authenticate, relayTokenSecret, prefix } = app.e2ee;

  app.get(
    ApiPath.twilioToken,
    {
      preHandler: authenticate,
      schema: {
        tags: ['tokens'],
        summary: 'A Twilio access token (or a local relay token) for the caller',
        security: bearerAuth,
        response: { 200: TokenResponseSchema, ...errorResponses(401) },
      },
    },
    async (request): Promise<TwilioTokenResponse> => {
      const identity = request.e2eeIdentity;
      const ttl = config.tokenTtl;
      if (config.twilio) return { mode: 'twilio', token: twilioAccessToken(config.twilio, identity, ttl), identity, ttl };
      return { mode: 'local', token: signRelayToken(relayTokenSecret, identity, ttl), identity, ttl, relayUrl: relayUrl(config.publicUrl, request, prefix) };
    },
  );
}
