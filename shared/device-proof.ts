/**
 * Device proofs (docs/PROTOCOL.md section 4.6): the `X-E2EE-Device` header a device sends with a
 * request that changes its identity's devices, proving possession of an active card's sign key.
 *
 *   X-E2EE-Device: <cardId hex>.<unix seconds>.<b64u Ed25519 signature>
 *
 * The signature covers DEVICE_PROOF_LABEL || METHOD "\n" path-with-query "\n" seconds "\n"
 * cardId "\n" || BLAKE2b-256(body bytes), so a proof authorizes one request and nothing else.
 * Both sides build the message here.
 */
import { DEVICE_PROOF_LABEL, SIGNATURE_BYTES } from './constants.js';
import { concatBytes, fromB64uExact, toB64u, utf8 } from './encoding.js';
import { blake2b256, verify } from './sodium.js';

/** The header's name (lower case, as Node reports incoming headers). */
export const DEVICE_PROOF_HEADER = 'x-e2ee-device';

export interface ProvedRequest {
  method: string;
  /** The path with its query, exactly as sent (e.g. "/v1/cards/ab12..."). */
  path: string;
  /** The exact body bytes; empty (or omitted) for a request without a body. */
  body?: Uint8Array;
}

export interface DeviceProof {
  cardId: string;
  /** Unix seconds when the device signed. */
  timestamp: number;
  signature: Uint8Array;
}

const HEADER_PATTERN = /^([0-9a-f]{64})\.(0|[1-9][0-9]{0,11})\.([A-Za-z0-9_-]{86})$/;

/** The bytes a device signs for `request`. */
export function deviceProofMessage(request: ProvedRequest, cardId: string, timestamp: number): Uint8Array {
  const head = utf8(`${request.method.toUpperCase()}\n${request.path}\n${timestamp}\n${cardId}\n`);
  return concatBytes(DEVICE_PROOF_LABEL, head, blake2b256(request.body ?? new Uint8Array(0)));
}

/** The header value proving that the holder of `cardId`'s sign key sends `request` now. */
export async function signDeviceProof(
  sign: (message: Uint8Array) => Promise<Uint8Array> | Uint8Array,
  cardId: string,
  request: ProvedRequest,
  nowSeconds = Math.floor(Date.now() / 1000),
): Promise<string> {
  const signature = await sign(deviceProofMessage(request, cardId, nowSeconds));
  return `${cardId}.${nowSeconds}.${toB64u(signature)}`;
}

/** The parts of a header value, or null when it is not of the form above. */
export function parseDeviceProof(header: string): DeviceProof | null {
  const match = HEADER_PATTERN.exec(header);
  if (!match) return null;
  try {
    return { cardId: match[1]!, timestamp: Number(match[2]), signature: fromB64uExact(match[3]!, SIGNATURE_BYTES, 'signature') };
  } catch {
    return null; // non-canonical base64url (stray bits in the last character)
  }
}

/** Whether `proof` is a signature by `signPublicKey` over `request`. */
export function verifyDeviceProof(proof: DeviceProof, signPublicKey: Uint8Array, request: ProvedRequest): boolean {
  return verify(proof.signature, deviceProofMessage(request, proof.cardId, proof.timestamp), signPublicKey);
}
