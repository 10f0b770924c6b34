/**
 * What the benchmarks encrypt and register: message bodies and card requests. Devices with cards
 * come from test/support/crypto.ts (makeDevice), app tokens from test/support/jwt.ts.
 */
import { randomBytes as nodeRandomBytes } from 'node:crypto';
import { createCardRequest, generateDeviceKeys, type CardRequest, type DeviceKeys } from '../shared/index.js';

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
