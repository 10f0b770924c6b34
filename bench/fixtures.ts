/** What the benchmarks encrypt for and register: real devices, cards and app tokens. */
import { createHmac, randomBytes as nodeRandomBytes } from 'node:crypto';
import {
  countersignCard,
  createCardRequest,
  generateAppKey,
  generateDeviceKeys,
  parseCardRequest,
  toB64u,
  trustAppKeys,
  verifyCard,
  type CardRequest,
  type DeviceKeys,
  type EnvelopeOpener,
  type EnvelopeSender,
  type VerifiedCard,
} from '../shared/index.js';

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

/** A device with a card countersigned by a throwaway AppKey: for the crypto benchmarks (no server). */
export interface BenchDevice {
  keys: DeviceKeys;
  card: VerifiedCard;
  sender: EnvelopeSender;
  opener: EnvelopeOpener;
}

const localApp = (() => {
  let app: ReturnType<typeof generateAppKey> | undefined;
  return () => (app ??= generateAppKey());
})();

export function localDevice(identity: string, deviceId: string): BenchDevice {
  const app = localApp();
  const keys = generateDeviceKeys();
  const wire = countersignCard(parseCardRequest(createCardRequest(keys, { identity, deviceId })), app);
  const card = verifyCard(wire, { trustedAppKeys: trustAppKeys([toB64u(app.publicKey)]), identity });
  return {
    keys,
    card,
    sender: { cardId: card.id, signSecretKey: keys.signSecretKey },
    opener: { cardId: card.id, boxSecretKey: keys.boxSecretKey, boxPublicKey: keys.boxPublicKey },
  };
}

/** A fresh device and its registration request for `identity` (POST /v1/cards). */
export function newRegistration(identity: string, deviceId: string): { keys: DeviceKeys; request: CardRequest } {
  const keys = generateDeviceKeys();
  return { keys, request: createCardRequest(keys, { identity, deviceId, deviceName: 'bench device' }) };
}

/** An HS256 app token, as the team's identity provider would sign it (AUTH_JWT_SECRET). */
export function signAppToken(identity: string, secret: string, ttlSeconds = 3600): string {
  const now = Math.floor(Date.now() / 1000);
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const unsigned = `${part({ alg: 'HS256', typ: 'JWT' })}.${part({ sub: identity, iat: now, exp: now + ttlSeconds })}`;
  return `${unsigned}.${createHmac('sha256', secret).update(unsigned).digest('base64url')}`;
}
