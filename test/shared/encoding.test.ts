/**
 * b64u and hex: one spelling per byte string. A lax decoder would let one signed card or envelope
 * travel under several texts (and defeat dedupe by text).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { E2EEError, ErrorCode, equalBytes, fromB64u, fromB64uExact, fromHex, fromUtf8, toB64u, toHex, utf8 } from '../../shared/index.js';
import { expectCode, nonCanonicalB64u, refB64u } from '../support/crypto.js';
import { runs } from '../support/fast-check.js';

describe('toB64u / fromB64u', () => {
  it('agrees with Node base64url on known values (RFC 4648 test strings)', () => {
    const cases: [string, string][] = [
      ['', ''],
      ['f', 'Zg'],
      ['fo', 'Zm8'],
      ['foo', 'Zm9v'],
      ['foob', 'Zm9vYg'],
      ['fooba', 'Zm9vYmE'],
      ['foobar', 'Zm9vYmFy'],
    ];
    for (const [plain, encoded] of cases) {
      expect(toB64u(utf8(plain))).toBe(encoded);
      expect(fromB64u(encoded)).toEqual(utf8(plain));
    }
    // The URL-safe characters, where standard base64 would use '+' and '/'.
    expect(toB64u(Uint8Array.of(0xfb, 0xff))).toBe('-_8');
    expect(fromB64u('-_8')).toEqual(Uint8Array.of(0xfb, 0xff));
  });

  it('round-trips any bytes and matches the reference encoder', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const text = toB64u(bytes);
        expect(text).toBe(refB64u(bytes));
        expect(fromB64u(text)).toEqual(bytes);
      }),
      { numRuns: runs(500) },
    );
  });

  it.each([
    ['padding "=="', 'AA=='],
    ['padding "="', 'AAA='],
    ['a lone "="', '='],
    ["standard alphabet '+'", 'A+8'],
    ["standard alphabet '/'", 'A/8'],
    ['a leading space', ' AAA'],
    ['an inner space', 'AA AA'],
    ['a trailing newline', 'AAA\n'],
    ['a tab', 'AA\tA'],
    ['CRLF line wrapping', 'AAAA\r\nAAAA'],
    ['a non-ASCII letter', 'AAé'],
    ['a full-width letter', 'AAＡ'],
    ['a NUL character', 'AA\u0000A'],
    ['non-zero trailing bits (length 2 mod 4)', 'AB'],
    ['non-zero trailing bits (length 3 mod 4)', 'AAB'],
    ['length 1', 'A'],
    ['length 1 mod 4', 'AAAAA'],
  ])('rejects %s', (_what, text) => {
    const err = expectCode(() => fromB64u(text, 'snapshot'), ErrorCode.ENCODING_INVALID);
    expect(err.message).toContain('"snapshot"');
  });

  it('rejects every non-canonical spelling of random bytes (flipped spare bits)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 100 }).filter((b) => b.length % 3 !== 0),
        (bytes) => {
          expectCode(() => fromB64u(nonCanonicalB64u(toB64u(bytes))), ErrorCode.ENCODING_INVALID);
        },
      ),
      { numRuns: runs(300) },
    );
  });

  it('accepts a string only if it is the canonical encoding of what it decodes to', () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/ \n';
    const chars = fc.constantFrom(...alphabet.split(''));
    fc.assert(
      fc.property(fc.array(chars, { maxLength: 12 }), (parts) => {
        const text = parts.join('');
        let decoded: Uint8Array;
        try {
          decoded = fromB64u(text);
        } catch (err) {
          expect(err).toBeInstanceOf(E2EEError);
          expect((err as E2EEError).code).toBe(ErrorCode.ENCODING_INVALID);
          return;
        }
        expect(toB64u(decoded)).toBe(text);
      }),
      { numRuns: runs(2000) },
    );
  });

  it('rejects non-strings with a typed error', () => {
    for (const value of [null, undefined, 42, {}, ['AAAA'], Uint8Array.of(65)]) {
      expectCode(() => fromB64u(value as unknown as string), ErrorCode.ENCODING_INVALID);
    }
  });

  it('fromB64uExact checks the decoded length and names the field', () => {
    const key = new Uint8Array(32).fill(7);
    expect(fromB64uExact(toB64u(key), 32, 'boxKey')).toEqual(key);
    const short = expectCode(() => fromB64uExact(toB64u(key.subarray(0, 31)), 32, 'boxKey'), ErrorCode.ENCODING_INVALID);
    expect(short.message).toContain('"boxKey" expected 32 bytes, got 31');
    expectCode(() => fromB64uExact(toB64u(new Uint8Array(33)), 32, 'boxKey'), ErrorCode.ENCODING_INVALID);
  });
});

describe('toHex / fromHex', () => {
  it('is lowercase and round-trips any bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (bytes) => {
        const text = toHex(bytes);
        expect(text).toBe(Buffer.from(bytes).toString('hex'));
        expect(fromHex(text)).toEqual(bytes);
      }),
      { numRuns: runs(300) },
    );
    expect(toHex(Uint8Array.of(0xab, 0x01, 0xff))).toBe('ab01ff');
  });

  it.each([
    ['upper case', 'AB01'],
    ['mixed case', 'aB01'],
    ['odd length', 'abc'],
    ['a non-hex letter', 'zz'],
    ['a 0x prefix', '0x00'],
    ['a leading space', ' ab'],
    ['a trailing newline', 'abcd\n'],
    ['a sign', '-1'],
  ])('rejects %s', (_what, text) => {
    const err = expectCode(() => fromHex(text, 'cardId'), ErrorCode.ENCODING_INVALID);
    expect(err.message).toContain('"cardId"');
  });

  it('rejects non-strings with a typed error', () => {
    for (const value of [null, 12, ['ab']]) expectCode(() => fromHex(value as unknown as string), ErrorCode.ENCODING_INVALID);
  });
});

describe('UTF-8 and byte helpers', () => {
  it('fromUtf8 refuses invalid sequences instead of replacing them', () => {
    expect(fromUtf8(utf8('héllo 👋'))).toBe('héllo 👋');
    for (const bad of [[0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xe2, 0x82]]) {
      expect(() => fromUtf8(Uint8Array.from(bad)), bad.join(',')).toThrow();
    }
  });

  it('fromUtf8 is exact: a leading byte order mark is kept, not silently dropped', () => {
    expect(fromUtf8(Uint8Array.of(0xef, 0xbb, 0xbf, 0x41))).toBe('\ufeffA');
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 40 }), (text) => {
        expect(fromUtf8(utf8(text))).toBe(text);
        expect(fromUtf8(utf8(`\ufeff${text}`))).toBe(`\ufeff${text}`);
      }),
      { numRuns: runs(200) },
    );
  });

  it('equalBytes compares content and length', () => {
    expect(equalBytes(Uint8Array.of(1, 2, 3), Uint8Array.of(1, 2, 3))).toBe(true);
    expect(equalBytes(Uint8Array.of(1, 2, 3), Uint8Array.of(1, 2, 4))).toBe(false);
    expect(equalBytes(Uint8Array.of(1, 2), Uint8Array.of(1, 2, 0))).toBe(false);
    expect(equalBytes(new Uint8Array(0), new Uint8Array(0))).toBe(true);
  });
});
