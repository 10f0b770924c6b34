/**
 * What the benchmarks encrypt and register: message bodies and card requests. Devices with cards
 * come from test/support/crypto.ts (makeDevice), app tokens from test/support/jwt.ts.
 */
import { randomBytes as nodeRandomBytes } from 'node:crypto';
import { createCardRequest, generateDeviceKeys, type CardRequest, type DeviceKeys } from '../shared/index.js';
import type { StoredCard } from '../server/store/types.js';

/** A conversation SID of Twilio's usual 34 characters. */
export const CONVERSATION_SID = `CH${'0123456789abcdef'.repeat(2)}`;

/** A message body of `chars` ASCII letters and digits (so its UTF-8 and JSON sizes equal `chars`). */
export function messageBody(chars: number): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ';
  const bytes = nodeRandomBytes(chars);
  let out = '';
  for (let i = 0; i < chars; i++) out += alphabet[bytes[i]! % alphabet.length];
  return out;
}

/** A fresh device and its registration request for `identity` (POST /v1/cards). */
export function newRegistration(identity: string, deviceId: string): { keys: DeviceKeys; request: CardRequest } {
  const keys = generateDeviceKeys();
  return { keys, request: createCardRequest(keys, { identity, deviceId, deviceName: 'bench device' }) };
}

/**
 * A card as the store keeps it, with random bytes for keys and signatures (nothing verifies them
 * below the routes): card `i` is device `i % devicesPerIdentity` of identity `<prefix>-<i / devicesPerIdentity>`.
 */
export function syntheticCard(i: number, prefix: string, devicesPerIdentity: number): StoredCard {
  const b64u = (n: number) => nodeRandomBytes(n).toString('base64url');
  return {
    id: nodeRandomBytes(32).toString('hex'),
    identity: `${prefix}-${Math.floor(i / devicesPerIdentity)}`,
    deviceId: `device-${i % devicesPerIdentity}`,
    signKey: b64u(32),
    boxKey: b64u(32),
    snapshot: b64u(260),
    selfSignature: b64u(64),
    appSignature: b64u(64),
    appKeyId: '0123456789abcdef',
    createdAt: 1_760_000_000,
    registeredAt: 1_760_000_000,
    revokedAt: null,
  };
}
