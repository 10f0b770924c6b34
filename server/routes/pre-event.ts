/**
 * Twilio's Conversations pre-action webhook (POST /v1/twilio/pre-event). Twilio asks before it
 * commits an action; a non-2xx answer rejects it. For onMessageAdd and onMessageUpdate the body
 * must be a well-formed envelope, so a client without the E2EE wrapper cannot put plaintext into
 * a protected conversation. Every request must carry a valid X-Twilio-Signature.
 */
import type { FastifyInstance } from 'fastify';
import twilio from 'twilio';
import { ApiErrorCode, ApiPath } from '../../shared/api.js';
import { parseEnvelope } from '../../shared/envelope.js';
import { isE2EEError } from '../../shared/errors.js';
import { httpError } from '../errors.js';
import { errorResponses } from '../schemas.js';

const MESSAGE_EVENTS = new Set(['onMessageAdd', 'onMessageUpdate']);

export default async function preEventRoutes(app: FastifyInstance): Promise<void> {
  const { config } = app.e2ee;
  // Twilio posts application/x-www-form-urlencoded; a repeated key keeps its first value.
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => {
    const params: Record<string, string> = Object.create(null);
    for (const [key, value] of new URLSearchParams(body as string)) if (!(key in params)) params[key] = value;
    done(null, params);
  });

  app.post(
    ApiPath.preEvent,
    {
      schema: {
        tags: ['webhooks'],
        summary: 'Twilio Conversations pre-action webhook: rejects message bodies that are not envelopes',
        description: 'Signed by Twilio (X-Twilio-Signature over PUBLIC_URL + path and the form parameters). Configure it as the service\'s pre-event URL with the onMessageAdd and onMessageUpdate filters.',
        consumes: ['application/x-www-form-urlencoded'],
        response: { 200: { type: 'object', additionalProperties: true }, ...errorResponses(400, 403, 415, 503) },
      },
    },
    async (request) => {
      const authToken = config.twilio?.authToken;
      if (!authToken || !config.publicUrl) {
        throw httpError(503, ApiErrorCode.TWILIO_UNAVAILABLE, 'the pre-event webhook needs TWILIO_AUTH_TOKEN and PUBLIC_URL');
      }
      const params = (request.body ?? {}) as Record<string, string>;
      const signature = request.headers['x-twilio-signature'];
      const url = config.publicUrl + request.url;
      if (typeof signature !== 'string' || !twilio.validateRequest(authToken, signature, url, params)) {
        throw httpError(403, ApiErrorCode.FORBIDDEN, 'X-Twilio-Signature does not match');
      }
      if (MESSAGE_EVENTS.has(params.EventType ?? '')) {
        try {
          parseEnvelope(params.Body ?? '');
        } catch (err) {
          const why = isE2EEError(err) ? err.message : 'not an envelope';
          request.log.info({ event: params.EventType, conversationSid: params.ConversationSid }, 'pre-event: rejected a message that is not an envelope');
          throw httpError(403, ApiErrorCode.ENVELOPE_REQUIRED, `this conversation is end-to-end encrypted: the message body must be an envelope (${why})`);
        }
      }
      return {};
    },
  );
}
