/**
 * The signed payload (docs/PROTOCOL.md 5.3): version 1, 2 and 3 (attachments), the attribute
 * split, the 4 KB limit, the comparison with what Twilio holds, and the round trip through an envelope.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { MAX_ATTRIBUTES_BYTES, generateDeviceKeys, openEnvelope, ready, sealEnvelope, toHex, type JsonValue } from '../../shared/index.js';
import { encryptAttachment, type AttachmentMetadata } from '../../shared/attachment.js';
import { MAX_ATTACHMENT_PREVIEW_BYTES } from '../../shared/limits.js';
import { buildPayload, clearAttributesMatch, parsePayload, payloadAttachments, payloadAttributes, payloadEdit, splitAttributes } from '../../shared/payload.js';

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

describe('attachments (version 3)', () => {
  let file: AttachmentMetadata;
  let other: AttachmentMetadata;
  const preview = { contentType: 'image/jpeg', bytes: new Uint8Array([0xff, 0xd8, 0xff, 1, 2, 3]), width: 96, height: 54 };
  beforeAll(async () => {
    await ready();
    const metadataOf = async (text: string, filename: string) => {
      const { chunks, metadata } = encryptAttachment(new TextEncoder().encode(text), { contentType: 'text/plain', filename });
      for await (const _ of chunks);
      return metadata;
    };
    [file, other] = await Promise.all([metadataOf('minutes', 'minutes.txt'), metadataOf('agenda', 'agenda.txt')]);
  });

  it('round-trips files and previews in a version 3 payload, edits included; a message without files stays version 2', () => {
    const payload = buildPayload(base, { attributes: { a: 1 }, attachments: [{ file, preview }, { file: other }], edit: { of: 'cd'.repeat(16), n: 1 } });
    expect(payload.v).toBe(3);
    const parsed = parsePayload(JSON.stringify(payload));
    expect(parsed).toEqual(payload);
    expect(payloadAttachments(parsed)).toEqual([{ file, preview }, { file: other }]);
    expect(payloadEdit(parsed)).toEqual({ of: 'cd'.repeat(16), n: 1 });
    expect(buildPayload(base, { attachments: [] }).v).toBe(2);
    expect(payloadAttachments(buildPayload(base, {}))).toEqual([]);
  });

  const wire = (items: unknown) => JSON.stringify({ v: 3, ...base, attributes: '{}', clearAttributes: '{}', attachments: JSON.stringify(items) });
  const data = 'AQID';
  it.each([
    ['no attachments member in version 3', JSON.stringify({ v: 3, ...base, attributes: '{}', clearAttributes: '{}' })],
    ['attachments in version 2', JSON.stringify({ v: 2, ...base, attributes: '{}', clearAttributes: '{}', attachments: '[]' })],
    ['an empty list', () => wire([])],
    ['attachments that are not JSON', JSON.stringify({ v: 3, ...base, attributes: '{}', clearAttributes: '{}', attachments: '[{' })],
    ['attachments not canonical JSON', () => wire([{ file }]).replace('[{', '[ {')],
    ['an unknown member beside file', () => wire([{ file, note: 'x' }])],
    ['the same file twice', () => wire([{ file }, { file }])],
    ['an SVG preview (a browser would run it)', () => wire([{ file, preview: { contentType: 'image/svg+xml', width: 9, height: 9, data } }])],
    ['a preview wider than the limit', () => wire([{ file, preview: { contentType: 'image/png', width: 513, height: 9, data } }])],
    ['a preview over the byte limit', () => wire([{ file, preview: { contentType: 'image/png', width: 9, height: 9, data: 'A'.repeat(Math.ceil(((MAX_ATTACHMENT_PREVIEW_BYTES + 1) * 4) / 3)) } }])],
    ['an empty preview', () => wire([{ file, preview: { contentType: 'image/png', width: 9, height: 9, data: '' } }])],
  ])('refuses %s (ENVELOPE_MALFORMED)', (_name, text) => {
    expect(codeOf(() => parsePayload(typeof text === 'function' ? text() : text))).toBe('ENVELOPE_MALFORMED');
  });

  it('refuses metadata that is not canonical with its own code, and a sender never builds it', () => {
    const text = wire([{ file: { ...file, paddedSize: file.paddedSize + 1 } }]);
    expect(codeOf(() => parsePayload(text))).toBe('ATTACHMENT_METADATA_INVALID');
    expect(codeOf(() => parsePayload(wire([{ file: { ...file, size: 2e8, paddedSize: 2e8 } }])))).toBe('ATTACHMENT_TOO_LARGE');
    expect(codeOf(() => buildPayload(base, { attachments: [{ file: { ...file, filename: '../etc/passwd' } }] }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => buildPayload(base, { attachments: [{ file, preview: { ...preview, contentType: 'text/html' } }] }))).toBe('INVALID_ARGUMENT');
  });

  it('travels signed and encrypted: the envelope text shows neither the name nor the key', () => {
    const alice = generateDeviceKeys();
    const bob = generateDeviceKeys();
    const cardId = (k: typeof alice) => toHex(k.signPublicKey);
    const sealed = sealEnvelope({
      sender: { cardId: cardId(alice), signSecretKey: alice.signSecretKey },
      recipients: [{ id: cardId(bob), boxPublicKey: bob.boxPublicKey }],
      conversationSid: 'CH1',
      body: '',
      content: { attachments: [{ file, preview }] },
    });
    expect(sealed.text).not.toContain('minutes');
    expect(sealed.text).not.toContain(file.key);
    const opened = openEnvelope(sealed.text, {
      recipient: { cardId: cardId(bob), boxSecretKey: bob.boxSecretKey, boxPublicKey: bob.boxPublicKey },
      senderCard: { id: cardId(alice), identity: 'alice', signPublicKey: alice.signPublicKey, revokedAt: null },
      conversationSid: 'CH1',
    });
    expect(payloadAttachments(opened.payload)).toEqual([{ file, preview }]);
  });
});
