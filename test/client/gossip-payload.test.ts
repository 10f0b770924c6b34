/**
 * Gossip in the signed payload (docs/PROTOCOL.md 5.3): the sender's latest checkpoint of the card
 * log, its size and root, travels signed and encrypted in version 2 and 3 payloads; payloads
 * without it (every earlier one) still open; a malformed one is refused, never half-read.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { generateDeviceKeys, openEnvelope, ready, sealEnvelope, toB64u, toHex } from '../../shared/index.js';
import { buildPayload, parsePayload, payloadCheckpoint } from '../../shared/payload.js';
import { errorCodeOf } from '../support/errors.js';

const base = { conversationSid: 'CH1', messageId: 'ab'.repeat(16), sentAt: 1_767_225_600_000, body: 'hi' };
const root = new Uint8Array(32).map((_, i) => i * 7);

beforeAll(async () => {
  await ready();
});

describe('the gossiped checkpoint in a payload', () => {
  it('round-trips size and root in version 2 and 3 payloads, edits included', () => {
    const payload = buildPayload(base, { attributes: { a: 1 }, edit: { of: 'cd'.repeat(16), n: 1 }, log: { size: 1234, root } });
    expect(payload).toMatchObject({ v: 2, logSize: 1234, logRoot: toB64u(root) });
    const parsed = parsePayload(JSON.stringify(payload));
    expect(parsed).toEqual(payload);
    expect(payloadCheckpoint(parsed)).toEqual({ size: 1234, root });
  });

  it('is absent from payloads of senders without a checkpoint and from every earlier payload, which still open', () => {
    expect(payloadCheckpoint(parsePayload(JSON.stringify(base)))).toBeUndefined();
    const v2 = buildPayload(base, { attributes: {} });
    expect(Object.keys(v2)).not.toContain('logSize');
    expect(payloadCheckpoint(parsePayload(JSON.stringify(v2)))).toBeUndefined();
  });

  it.each<[string, Record<string, unknown>]>([
    ['a size without a root', { logSize: 3 }],
    ['a root without a size', { logRoot: toB64u(root) }],
    ['size 0', { logSize: 0, logRoot: toB64u(root) }],
    ['a fractional size', { logSize: 1.5, logRoot: toB64u(root) }],
    ['a size as text', { logSize: '3', logRoot: toB64u(root) }],
    ['a root of 31 bytes', { logSize: 3, logRoot: toB64u(root.subarray(1)) }],
    ['a root in standard base64', { logSize: 3, logRoot: Buffer.from(root).toString('base64') }],
    ['a root with stray bits', { logSize: 3, logRoot: toB64u(root).slice(0, -1) + 'B' }],
  ])('refuses %s as ENVELOPE_MALFORMED', (_name, members) => {
    const payload = { v: 2, ...base, attributes: '{}', clearAttributes: '{}', ...members };
    expect(errorCodeOf(() => parsePayload(JSON.stringify(payload)))).toBe('ENVELOPE_MALFORMED');
  });

  it('refuses a checkpoint in a version 1 payload, and a sender never builds a bad one', () => {
    expect(errorCodeOf(() => parsePayload(JSON.stringify({ ...base, logSize: 3, logRoot: toB64u(root) })))).toBe('ENVELOPE_MALFORMED');
    expect(errorCodeOf(() => buildPayload(base, { log: { size: 0, root } }))).toBe('INVALID_ARGUMENT');
    expect(errorCodeOf(() => buildPayload(base, { log: { size: 2, root: root.subarray(1) } }))).toBe('INVALID_ARGUMENT');
  });

  it('travels signed and encrypted: the envelope opens to it, and its text does not show it', () => {
    const alice = generateDeviceKeys();
    const bob = generateDeviceKeys();
    const cardId = (k: typeof alice) => toHex(k.signPublicKey); // any 64 hex characters name a card here
    const sealed = sealEnvelope({
      sender: { cardId: cardId(alice), signSecretKey: alice.signSecretKey },
      recipients: [{ id: cardId(bob), boxPublicKey: bob.boxPublicKey }],
      conversationSid: 'CH1',
      body: 'x',
      content: { attributes: {}, log: { size: 99, root } },
    });
    expect(sealed.text).not.toContain(toB64u(root));
    const opened = openEnvelope(sealed.text, {
      recipient: { cardId: cardId(bob), boxSecretKey: bob.boxSecretKey, boxPublicKey: bob.boxPublicKey },
      senderCard: { id: cardId(alice), identity: 'alice', signPublicKey: alice.signPublicKey, revokedAt: null },
      conversationSid: 'CH1',
    });
    expect(payloadCheckpoint(opened.payload)).toEqual({ size: 99, root });
  });
});
