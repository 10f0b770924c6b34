/**
 * TypeBox schemas shared by the route modules. They validate input (strictly: the plugin's
 * routes use TypeBox's own validator, which never coerces a JSON body) and generate the OpenAPI
 * document at /docs. Limits come from the core's constants so the two never disagree.
 */
import { Type, type TSchema } from '@fastify/type-provider-typebox';
import { MAX_IDENTITY_CHARS, MAX_SNAPSHOT_BYTES } from '../shared/limits.js';
import { STORABLE_TEXT_PATTERN } from './storable-text.js';

export const ErrorSchema = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: 'stable error code (docs/API.md "Error codes")' }),
      message: Type.String({ description: 'for humans; do not branch on it' }),
    }),
  },
  { title: 'Error', description: 'every 4xx/5xx response' },
);

/** Response entries for the given error statuses, for the OpenAPI document. */
export function errorResponses(...statuses: number[]): Record<number, TSchema> {
  return Object.fromEntries(statuses.map((status) => [status, ErrorSchema]));
}

/** A Twilio identity: 1..256 characters (Twilio's limit, and the card's), storable as given. */
export const IdentitySchema = Type.String({ minLength: 1, maxLength: MAX_IDENTITY_CHARS, pattern: STORABLE_TEXT_PATTERN });

export const CardIdSchema = Type.String({ pattern: '^[0-9a-f]{64}$', description: 'hex BLAKE2b-256 of the snapshot' });

/**
 * Only the shape: the content (encoding, members, sizes, signature) is the core's to check
 * (parseCardRequest), so every card failure gets its CARD_* / ENCODING_INVALID code. The body
 * limit bounds the strings.
 */
export const RegisterCardSchema = Type.Object(
  {
    snapshot: Type.String({ minLength: 1, description: `b64u of the snapshot bytes (card v1, at most ${MAX_SNAPSHOT_BYTES} bytes)` }),
    selfSignature: Type.String({ minLength: 1, description: 'b64u of the Ed25519 self-signature (64 bytes)' }),
  },
  { additionalProperties: false },
);

export const CardSchema = Type.Object(
  {
    id: Type.String(),
    snapshot: Type.String(),
    selfSignature: Type.String(),
    appSignature: Type.String(),
    appKeyId: Type.String(),
    revokedAt: Type.Union([Type.Integer(), Type.Null()], { description: 'unix seconds, or null while active' }),
  },
  { title: 'Card', description: 'a countersigned card v1 (wire form)' },
);

/** Route-level `security` for routes behind `authenticate`. */
export const bearerAuth = [{ bearerAuth: [] }];
