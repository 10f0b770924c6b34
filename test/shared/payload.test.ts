/**
 * The signed payload (docs/PROTOCOL.md 5.3): version 1 and version 2, the attribute split, the
 * 4 KB limit, the comparison with what Twilio holds, and the round trip through an envelope.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { MAX_ATTRIBUTES_BYTES, generateDeviceKeys, openEnvelope, ready, sealEnvelope, toHex, type JsonValue } from '../../shared/index.js';
import { buildPayload, clearAttributesMatch, parsePayload, payloadAttributes, payloadEdit, splitAttributes } from '../../shared/payload.js';

const base = { conversationSid: 'CH1', messageId: 'ab'.repeat(16), sentAt: 1_767_225_600_000, body: 'hi' };

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
}

describe('splitting attributes', () => {
  it('keeps the clear keys readable and encrypts the rest', () => {
    expect(splitAttributes({ ticketId: 'T-1', note: 'secret', n: 2 }, ['ticketId', 'absent'])).toEqual({ encrypted: '{"note":"secret","n":2}', clear: '{"ticketId":"T-1"}' });
  });

  it('encrypts a value that is not an object whole; no attributes are {}', () => {
    expect(splitAttributes(['a', 1], ['a'])).toEqual({ encrypted: '["a",1]', clear: '{}' });
    expect(splitAttributes(undefined)).toEqual({ encrypted: '{}', clear: '{}' });
  });

  it('refuses either part above 4 KB, never truncating', () => {
    const big = 'x'.repeat(MAX_ATTRIBUTES_BYTES);
    expect(codeOf(() => splitAttributes({ big }, ['big']))).toBe('ATTRIBUTES_TOO_LARGE');
    expect(codeOf(() => splitAttributes({ big }, []))).toBe('ATTRIBUTES_TOO_LARGE');
    const fits = 'x'.repeat(MAX_ATTRIBUTES_BYTES - '{"big":""}'.length);
    expect(splitAttributes({ big: fits }, ['big']).clear.length).toBe(MAX_ATTRIBUTES_BYTES);
  });
});

describe('parsing payloads', () => {
  it('opens a version 1 payload (earlier releases) as before, with no attributes and no edit', () => {
    const payload = parsePayload(JSON.stringify(base));
    expect(payload).toEqual(base);
    expect(payloadAttributes(payload)).toBeUndefined();
    expect(payloadEdit(payload)).toBeUndefined();
  });

  it('round-trips a version 2 payload and rebuilds the full attributes', () => {
    const attributes = { ticketId: 'T-1', nested: { deep: [1, null, true] } };
    const payload = buildPayload(base, { attributes, clearKeys: ['ticketId'], edit: { of: 'cd'.repeat(16), n: 3 } });
    const parsed = parsePayload(JSON.stringify(payload));
    expect(parsed).toEqual(payload);
    expect(payloadAttributes(parsed)).toEqual(attributes);
    expect(payloadEdit(parsed)).toEqual({ of: 'cd'.repeat(16), n: 3 });
  });

  it.each<[string, Record<string, unknown>]>([
    ['an unknown member', { ...base, v: 2, attributes: '{}', clearAttributes: '{}', extra: 1 }],
    ['v 3', { ...base, v: 3, attributes: '{}', clearAttributes: '{}' }],
    ['attributes in a version 1 payload', { ...base, attributes: '{}' }],
    ['overlapping parts', { ...base, v: 2, attributes: '{"a":1}', clearAttributes: '{"a":1}' }],
    ['clear keys beside a non-object', { ...base, v: 2, attributes: '[1]', clearAttributes: '{"a":1}' }],
    ['a clear part that is not an object', { ...base, v: 2, attributes: '{}', clearAttributes: '"a"' }],
    ['attributes with a duplicate key', { ...base, v: 2, attributes: '{"a":1,"a":2}', clearAttributes: '{}' }],
    ['attributes not as JSON.stringify writes them', { ...base, v: 2, attributes: '{"a": 1}', clearAttributes: '{}' }],
    ['an edit without its counter', { ...base, v: 2, attributes: '{}', clearAttributes: '{}', editOf: 'cd'.repeat(16) }],
    ['an edit counter of 0', { ...base, v: 2, attributes: '{}', clearAttributes: '{}', editOf: 'cd'.repeat(16), edit: 0 }],
  ])('refuses %s', (_name, payload) => {
    expect(codeOf(() => parsePayload(JSON.stringify(payload)))).toBe('ENVELOPE_MALFORMED');
  });
});

describe('comparing the clear part with what Twilio holds', () => {
  const payload = buildPayload(base, { attributes: { b: { y: 1, x: [2] }, a: 'T', hidden: 1 }, clearKeys: ['a', 'b'] });

  it('matches the same value, whatever the key order', () => {
    expect(clearAttributesMatch(payload, { a: 'T', b: { x: [2], y: 1 } })).toBe(true);
  });

  it.each<[string, unknown]>([
    ['a changed value', { a: 'U', b: { x: [2], y: 1 } }],
    ['an extra key', { a: 'T', b: { x: [2], y: 1 }, hidden: 1 }],
    ['a missing key', { a: 'T' }],
    ['nothing', undefined],
  ])('does not match %s', (_name, held) => {
    expect(clearAttributesMatch(payload, held)).toBe(false);
  });

  it('takes no attributes on Twilio as {} and compares nothing for version 1', () => {
    expect(clearAttributesMatch(buildPayload(base, {}), undefined)).toBe(true);
    expect(clearAttributesMatch(buildPayload(base), { anything: 1 })).toBe(true);
  });
});

describe('through an envelope', () => {
  beforeAll(() => ready());

  it('seals attributes in the signed plaintext and opens them', () => {
    const alice = generateDeviceKeys();
    const bob = generateDeviceKeys();
    const cardId = (k: typeof alice) => toHex(k.signPublicKey); // any 64 hex characters name a card here
    const attributes: JsonValue = { ticketId: 'T-9', secret: 'hidden from Twilio' };
    const sealed = sealEnvelope({
      sender: { cardId: cardId(alice), signSecretKey: alice.signSecretKey },
      recipients: [{ id: cardId(bob), boxPublicKey: bob.boxPublicKey }],
      conversationSid: 'CH1',
      body: 'x',
      content: { attributes, clearKeys: ['ticketId'] },
    });
    expect(sealed.text).not.toContain('hidden');
    const opened = openEnvelope(sealed.text, {
      recipient: { cardId: cardId(bob), boxSecretKey: bob.boxSecretKey, boxPublicKey: bob.boxPublicKey },
      senderCard: { id: cardId(alice), identity: 'alice', signPublicKey: alice.signPublicKey, revokedAt: null },
      conversationSid: 'CH1',
    });
    expect(payloadAttributes(opened.payload)).toEqual(attributes);
    expect(opened.payload.clearAttributes).toBe('{"ticketId":"T-9"}');
  });
});
