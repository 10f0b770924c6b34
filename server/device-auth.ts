/**
 * Device sessions: which requests an app token alone may not make (docs/API.md "Device proofs").
 * Changing an identity's devices (revoking, approving, adding a device to an identity that has
 * one under NEW_DEVICE_POLICY=approval) takes an X-E2EE-Device proof signed by an ACTIVE card of
 * the token's identity (shared/device-proof.ts), so a stolen token, or a revoked device's token
 * and key, cannot do it.
 */
import { Type } from '@fastify/type-provider-typebox';
import { E2EEError, ErrorCode } from '../shared/errors.js';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { DEVICE_PROOF_MAX_SKEW_SECONDS } from '../shared/limits.js';
import { DEVICE_PROOF_HEADER, parseDeviceProof, verifyDeviceProof } from '../shared/device-proof.js';
import { fromB64u, utf8 } from '../shared/encoding.js';
import type { CardAuthorization, Store, StoredCard } from './store/types.js';

/** How long a new device's request waits for approval, seconds. */
export const PENDING_DEVICE_TTL_SECONDS = 15 * 60;
/** Unexpired pending requests per identity: bounds what a stolen token can pile up for the owner to see. */
export const MAX_PENDING_DEVICES_PER_IDENTITY = 5;

export const PendingDeviceSchema = Type.Object(
  {
    cardId: Type.String({ description: 'the id of the card it becomes once approved; names the request' }),
    identity: Type.String(),
    deviceName: Type.String(),
    snapshot: Type.String({ description: 'b64u snapshot as the new device signed it: approving countersigns exactly this' }),
    selfSignature: Type.String(),
    requestedAt: Type.Integer({ description: 'unix seconds' }),
    expiresAt: Type.Integer({ description: `unix seconds, ${PENDING_DEVICE_TTL_SECONDS} s after requestedAt` }),
    status: Type.Union([Type.Literal('pending'), Type.Literal('rejected')]),
  },
  { title: 'PendingDevice', description: 'a new device waiting for approval by an existing device of the identity' },
);

/** The exact body bytes of requests in scopes that called keepRawJsonBodies. */
const rawBodies = new WeakMap<FastifyRequest, Uint8Array>();

/**
 * Replaces the JSON parser of `scope` with Fastify's own one that also keeps the body bytes, as
 * the proof signs them (a re-serialized body would differ in spacing or member order).
 */
export function keepRawJsonBodies(scope: FastifyInstance): void {
  const parseJson = scope.getDefaultJsonParser('error', 'error');
  scope.removeContentTypeParser('application/json');
  scope.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    rawBodies.set(request, utf8(body as string)); // UTF-8 text in, the same bytes out
    parseJson(request, body as string, done);
  });
}

const unixNow = (): number => Math.floor(Date.now() / 1000);

/**
 * The request target below the path the plugin is mounted under: what the client signed, as its
 * paths are relative to its serverUrl (which includes the prefix). A target outside the prefix
 * stays whole, and so matches no proof.
 */
function pathBelowPrefix(request: FastifyRequest): string {
  const { prefix } = request.server.e2ee;
  return request.url.startsWith(`${prefix}/`) ? request.url.slice(prefix.length) : request.url;
}

/**
 * The active card of the request's identity that signed its X-E2EE-Device proof, or null when
 * the request carries none. A header that is present is always checked: 401 DEVICE_PROOF_INVALID
 * (malformed, unknown card, wrong signature), 401 DEVICE_PROOF_EXPIRED (timestamp further than
 * DEVICE_PROOF_MAX_SKEW_SECONDS from the server clock), 403 FORBIDDEN (another identity's card),
 * 403 DEVICE_REVOKED.
 */
export async function provenDevice(request: FastifyRequest, store: Store): Promise<StoredCard | null> {
  const header = request.headers[DEVICE_PROOF_HEADER];
  if (header === undefined) return null;
  const proof = typeof header === 'string' ? parseDeviceProof(header) : null;
  if (!proof) {
    throw new E2EEError(ErrorCode.DEVICE_PROOF_INVALID, `${DEVICE_PROOF_HEADER} must be <cardId>.<unix seconds>.<b64u signature>, once`);
  }
  if (Math.abs(unixNow() - proof.timestamp) > DEVICE_PROOF_MAX_SKEW_SECONDS) {
    throw new E2EEError(ErrorCode.DEVICE_PROOF_EXPIRED, `the device proof's time must be within ${DEVICE_PROOF_MAX_SKEW_SECONDS} seconds of the server clock`);
  }
  const card = await store.getCard(proof.cardId);
  if (!card) throw new E2EEError(ErrorCode.DEVICE_PROOF_INVALID, 'the device proof names no registered card');
  const signed = { method: request.method, path: pathBelowPrefix(request), body: rawBodies.get(request) };
  if (!verifyDeviceProof(proof, fromB64u(card.signKey), signed)) {
    throw new E2EEError(ErrorCode.DEVICE_PROOF_INVALID, 'the device proof\'s signature does not match this request and card');
  }
  if (card.identity !== request.e2eeIdentity) throw new E2EEError(ErrorCode.FORBIDDEN, 'the device proof\'s card belongs to another identity');
  if (card.revokedAt !== null) throw new E2EEError(ErrorCode.DEVICE_REVOKED, 'the device proof\'s card is revoked; register as a new device');
  return card;
}

/** provenDevice, with 401 DEVICE_PROOF_REQUIRED when the request carries no proof. */
export async function requireDevice(request: FastifyRequest, store: Store): Promise<StoredCard> {
  const card = await provenDevice(request, store);
  if (!card) throw new E2EEError(ErrorCode.DEVICE_PROOF_REQUIRED, `this request needs an ${DEVICE_PROOF_HEADER} proof by an active device of the identity`);
  return card;
}

/**
 * The proof `signer` made for this request (provenDevice checked it), as the store keeps it with
 * the card change it authorizes, so the identity's other devices can check it (PROTOCOL.md 17.8).
 */
export function deviceAuthorization(request: FastifyRequest, signer: StoredCard): CardAuthorization {
  const proof = parseDeviceProof(request.headers[DEVICE_PROOF_HEADER] as string)!;
  const body = rawBodies.get(request) ?? new Uint8Array(0);
  return { signerCardId: signer.id, timestamp: proof.timestamp, signature: proof.signature, method: request.method, path: pathBelowPrefix(request), body };
}
