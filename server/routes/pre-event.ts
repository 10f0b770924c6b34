/**
 * Twilio's Conversations webhooks. Pre-action (POST /v1/twilio/pre-event): Twilio asks before it
 * commits an action; a non-2xx answer rejects it. For onMessageAdd and onMessageUpdate the body
 * must be a well-formed envelope, so a client without the E2EE wrapper cannot put plaintext into
 * a protected conversation; media (onMessageAdd's Media) must be opaque blobs, as the wrapper
 * uploads them (application/octet-stream: a real content type leaks what the file is). Post-action (POST /v1/twilio/post-event): Twilio reports what it did;
 * onMessageRemoved deletes the message's organization history copy. Every request must carry a
 * valid X-Twilio-Signature.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import twilio from 'twilio';
import { ApiPath } from '../../shared/api.js';
import { parseEnvelope } from '../../shared/envelope.js';
import { E2EEError, ErrorCode, isE2EEError } from '../../shared/errors.js';
import { errorResponses } from '../schemas.js';

const MESSAGE_EVENTS = new Set(['onMessageAdd', 'onMessageUpdate']);
/** The one content type of an encrypted attachment's blob (docs/PROTOCOL.md section 16). */
const OPAQUE_MEDIA_TYPE = 'application/octet-stream';

type FormParams = Record<string, string | string[]>;

/** Why a message event's Body is not one well-formed envelope, or null when it is one. */
function envelopeProblem(body: string | string[] | undefined): string | null {
  // Which of several bodies Twilio would keep is not ours to guess: a message has one body.
  if (Array.isArray(body)) return `Body appears ${body.length} times`;
  try {
    parseEnvelope(body ?? '');
    return null;
  } catch (err) {
    return isE2EEError(err) ? err.message : 'not an envelope';
  }
}

/**
 * Why a message event's Media (Twilio's JSON text: an array of {Sid, Filename, ContentType, Size,
 * ...}) is not a list of opaque blobs, or null when it is one or there is none. Anything that
 * cannot be read as such is refused: what Twilio would keep is not ours to guess.
 */
function mediaProblem(media: string | string[] | undefined): string | null {
  if (media === undefined || media === '') return null;
  if (Array.isArray(media)) return `Media appears ${media.length} times`;
  let items: unknown;
  try {
    items = JSON.parse(media);
  } catch {
    return 'Media is not JSON';
  }
  if (!Array.isArray(items)) return 'Media is not a list';
  for (const item of items) {
    const type = (item as { ContentType?: unknown } | null)?.ContentType;
    if (type !== OPAQUE_MEDIA_TYPE) {
      return `media must be encrypted blobs of type ${OPAQUE_MEDIA_TYPE}, not ${typeof type === 'string' ? JSON.stringify(type.slice(0, 100)) : 'without a ContentType'}`;
    }
  }
  return null;
}

/** Why a message event may not pass (its body, then its media), or null. */
function messageProblem(params: FormParams): string | null {
  const body = envelopeProblem(params.Body);
  return body !== null ? `the message body must be an envelope (${body})` : mediaProblem(params.Media);
}

/** The one value of a form parameter, if any; BAD_REQUEST when it is repeated. */
function single(params: FormParams, name: string): string | undefined {
  const value = params[name];
  if (Array.isArray(value)) throw new E2EEError(ErrorCode.BAD_REQUEST, `${name} must appear once`);
  return value;
}

/** The one non-empty value of a form parameter; BAD_REQUEST otherwise. */
function required(params: FormParams, name: string): string {
  const value = single(params, name);
  if (!value) throw new E2EEError(ErrorCode.BAD_REQUEST, `${name} is required`);
  return value;
}

export default async function preEventRoutes(app: FastifyInstance): Promise<void> {
  const { config, store } = app.e2ee;
  // Twilio posts application/x-www-form-urlencoded. A repeated key keeps every value (as an
  // array, the form twilio.validateRequest signs), so the signature covers the whole body: keeping
  // only one value would let anyone append unsigned parameters to a signed request.
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => {
    const params: FormParams = Object.create(null);
    for (const [key, value] of new URLSearchParams(body as string)) {
      const previous = params[key];
      params[key] = previous === undefined ? value : [...(Array.isArray(previous) ? previous : [previous]), value];
    }
    done(null, params);
  });

  /** The form Twilio posted, once its X-Twilio-Signature is checked against PUBLIC_URL + the path. */
  function signedParams(request: FastifyRequest): FormParams {
    const authToken = config.twilio?.authToken;
    if (!authToken || !config.publicUrl) {
      throw new E2EEError(ErrorCode.TWILIO_UNAVAILABLE, 'the Twilio webhooks need TWILIO_AUTH_TOKEN and PUBLIC_URL');
    }
    const params = (request.body ?? {}) as FormParams;
    const signature = request.headers['x-twilio-signature'];
    const url = config.publicUrl + request.url;
    if (typeof signature !== 'string' || !twilio.validateRequest(authToken, signature, url, params)) {
      throw new E2EEError(ErrorCode.FORBIDDEN, 'X-Twilio-Signature does not match');
    }
    return params;
  }

  app.post(
    ApiPath.preEvent,
    {
      schema: {
        tags: ['webhooks'],
        summary: 'Twilio Conversations pre-action webhook: rejects message bodies that are not envelopes, and media that are not opaque blobs',
        description: 'Signed by Twilio (X-Twilio-Signature over PUBLIC_URL + path and the form parameters). Configure it as the service\'s pre-event URL with the onMessageAdd and onMessageUpdate filters.',
        consumes: ['application/x-www-form-urlencoded'],
        response: { 200: { type: 'object', additionalProperties: true }, ...errorResponses(400, 403, 415, 503) },
      },
    },
    async (request) => {
      const params = signedParams(request);
      const eventType = single(params, 'EventType');
      const problem = MESSAGE_EVENTS.has(eventType ?? '') ? messageProblem(params) : null;
      if (problem !== null) {
        request.log.info({ event: eventType, conversationSid: params.ConversationSid }, 'pre-event: rejected a message that is not an envelope or has clear media');
        throw new E2EEError(ErrorCode.ENVELOPE_REQUIRED, `this conversation is end-to-end encrypted: ${problem}`);
      }
      return {};
    },
  );

  app.post(
    ApiPath.postEvent,
    {
      schema: {
        tags: ['webhooks'],
        summary: 'Twilio Conversations post-action webhook: a removed message\'s history copy is deleted',
        description:
          'Signed by Twilio as the pre-event webhook is. onMessageRemoved (ConversationSid, MessageSid) deletes that message\'s ' +
          'organization history copy; every other event is answered 200 and ignored. Configure it as the service\'s post-event URL with ' +
          'the onMessageRemoved filter.',
        consumes: ['application/x-www-form-urlencoded'],
        response: { 200: { type: 'object', additionalProperties: true }, ...errorResponses(400, 403, 415, 503) },
      },
    },
    async (request) => {
      const params = signedParams(request);
      if (single(params, 'EventType') !== 'onMessageRemoved') return {};
      const conversationSid = required(params, 'ConversationSid');
      const messageSid = required(params, 'MessageSid');
      // No OrgKey needed: deleting a row opens nothing, and every instance shares the one store.
      const deleted = await store.deleteHistory(conversationSid, messageSid);
      request.log.info({ event: 'onMessageRemoved', conversationSid, messageSid, deleted }, 'post-event: a removed message\'s history copy');
      return {};
    },
  );
}
