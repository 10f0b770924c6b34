/**
 * Hostile input for the HTTP and relay fuzzing in test/security: fast-check arbitraries of the
 * values an attacker sends (wrong types, empty and huge strings, invalid base64url and hex, deep
 * nesting, prototype-pollution keys, SQL-injection strings, path tricks, wrong content types).
 * Each list names the trick it tries, so a failure report says what got through.
 */
import fc from 'fast-check';

export const SQL_INJECTIONS = [
  "' OR '1'='1",
  "'; DROP TABLE cards; --",
  '" OR 1=1 --',
  "alice' --",
  "1; SELECT pg_sleep(5); --",
  "' UNION SELECT sign_key, box_key FROM cards --",
  "') OR ('a'='a",
  '\\x27; DELETE FROM history; --',
  "%27%20OR%201%3D1",
  "$1",
  '?',
  '*',
  "'||(SELECT value FROM settings)||'",
  "1e400",
];

/** Tricks for path parameters (ids), raw: the caller decides how to put them in a URL. */
export const PATH_TRICKS = [
  '..',
  '.',
  '../..',
  '../../etc/passwd',
  '..%2f..%2fetc%2fpasswd',
  '%2e%2e',
  '%2e%2e%2f%2e%2e',
  '%252e%252e',
  '..\\..\\',
  '%5c..%5c',
  'a/b',
  'a%2Fb',
  '%00',
  'a%00b',
  '//',
  ';',
  ';jsessionid=1',
  '%3Bx',
  '%',
  '%zz',
  '%c0%ae%c0%ae',
  '%e2%80%ae',
  '．．',
  '~',
  '$',
  '@',
  ' ',
  '%20',
  '*',
  'CHAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/../..',
];

export const PROTO_KEYS = ['__proto__', 'constructor', 'prototype', 'hasOwnProperty', 'toString', 'valueOf', '__defineGetter__', 'isAdmin'];

/** Content types an attacker may claim (the body may be anything). */
export const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'application/json; charset=utf-16',
  'application/json; charset=iso-8859-1',
  'APPLICATION/JSON',
  'application/json, text/html',
  'application/jsonx',
  'application/vnd.api+json',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=----x',
  'text/plain',
  'text/html',
  'application/xml',
  'application/octet-stream',
  '*/*',
  'json',
  ';',
  '',
];

const B64U_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.split('');

/** Strings that are almost base64url: padding, the standard alphabet, whitespace, stray bits, wrong lengths. */
export const invalidB64u: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: fc.constantFrom(...B64U_CHARS), minLength: 1, maxLength: 120 }).map((s) => `${s}=`),
  fc.string({ unit: fc.constantFrom(...B64U_CHARS, '+', '/', '='), minLength: 1, maxLength: 120 }),
  fc.string({ unit: fc.constantFrom(...B64U_CHARS), minLength: 1, maxLength: 120 }).map((s) => ` ${s}\n`),
  fc.string({ unit: fc.constantFrom(...B64U_CHARS), minLength: 1, maxLength: 1 }),
  fc.constantFrom('AB', 'ABC', 'ABCDE', 'AAAAAB', 'A_', 'Zz', '____', '-'.repeat(86), 'A'.repeat(85) + 'B'),
  fc.string({ unit: fc.constantFrom(...B64U_CHARS), minLength: 80, maxLength: 120 }),
);

/** Strings that are almost lowercase hex: upper case, odd or wrong length, other letters. */
export const invalidHex: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: fc.constantFrom(...'0123456789ABCDEF'.split('')), minLength: 64, maxLength: 64 }),
  fc.string({ unit: fc.constantFrom(...'0123456789abcdef'.split('')), minLength: 63, maxLength: 63 }),
  fc.string({ unit: fc.constantFrom(...'0123456789abcdef'.split('')), minLength: 65, maxLength: 65 }),
  fc.string({ unit: fc.constantFrom(...'0123456789abcdefg'.split('')), minLength: 64, maxLength: 64 }),
  fc.string({ unit: fc.constantFrom(...'0123456789abcdef'.split('')), minLength: 0, maxLength: 20 }),
  fc.constant(`0x${'a'.repeat(62)}`),
);

/** Huge strings: near and above the body limit and the identity limit. */
export const hugeString: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(257, 2049, 4097, 32_769, 70_000).map((n) => 'A'.repeat(n)),
  fc.constantFrom(256, 257).map((n) => '👩'.repeat(n)),
);

/** Every kind of string an attacker tries. */
export const hostileString: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 20 }) },
  { weight: 1, arbitrary: fc.constant('') },
  { weight: 1, arbitrary: hugeString },
  { weight: 2, arbitrary: invalidB64u },
  { weight: 2, arbitrary: invalidHex },
  { weight: 2, arbitrary: fc.constantFrom(...SQL_INJECTIONS) },
  { weight: 2, arbitrary: fc.constantFrom(...PATH_TRICKS) },
  { weight: 1, arbitrary: fc.constantFrom(...PROTO_KEYS) },
  { weight: 1, arbitrary: fc.constantFrom('\u0000', 'a\u0000b', '\ud800', 'a\udfffb', '\u202e', '\ufeff', '\r\n', '\t', 'null', 'undefined', 'NaN', '-1', '0', '1e400', '{}', '[]') },
);

/** Values of the wrong type (and of the right type, hostile). */
export const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: hostileString },
  { weight: 1, arbitrary: fc.integer() },
  { weight: 1, arbitrary: fc.constantFrom(-1, 0, 1.5, -0, 2 ** 53, 2 ** 64, 1e308, -1e308, Number.MAX_SAFE_INTEGER + 2) },
  { weight: 1, arbitrary: fc.boolean() },
  { weight: 1, arbitrary: fc.constant(null) },
  { weight: 1, arbitrary: fc.array(fc.oneof(fc.string({ maxLength: 8 }), fc.integer()), { maxLength: 4 }) },
  { weight: 1, arbitrary: fc.dictionary(fc.oneof(fc.constantFrom(...PROTO_KEYS), fc.string({ maxLength: 6 })), fc.string({ maxLength: 8 }), { maxKeys: 3 }) },
);

/** JSON text nested `depth` levels deep, as arrays or objects. */
export function deepNesting(depth: number, kind: 'array' | 'object'): string {
  return kind === 'array' ? `${'['.repeat(depth)}${']'.repeat(depth)}` : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
}

/** JSON object text whose (first) key is a prototype-pollution key, with `inner` as its value. */
export function pollutingJson(key: string, inner: string, members: Record<string, unknown> = {}): string {
  const rest = JSON.stringify(members).slice(1, -1);
  return `{${JSON.stringify(key)}:${inner}${rest ? `,${rest}` : ''}}`;
}

/**
 * A JSON body for a route whose valid body is `valid`: the valid body with one member replaced,
 * removed, or an extra (possibly polluting) member; or anything else entirely.
 */
export function hostileJsonBody(valid: () => Record<string, unknown>): fc.Arbitrary<string> {
  const keys = Object.keys(valid());
  return fc.oneof(
    {
      weight: 6,
      arbitrary: fc.record({ key: fc.constantFrom(...keys), value: hostileValue }).map(({ key, value }) => JSON.stringify({ ...valid(), [key]: value })),
    },
    { weight: 1, arbitrary: fc.constantFrom(...keys).map((key) => JSON.stringify({ ...valid(), [key]: undefined })) },
    {
      weight: 2,
      arbitrary: fc
        .record({ key: fc.constantFrom(...PROTO_KEYS), inner: fc.constantFrom('{"isAdmin":true}', '{"prototype":{"isAdmin":true}}', '1', '"x"', 'null') })
        .map(({ key, inner }) => pollutingJson(key, inner, valid())),
    },
    { weight: 1, arbitrary: fc.record({ key: fc.string({ maxLength: 10 }), value: hostileValue }).map(({ key, value }) => JSON.stringify({ ...valid(), [key]: value })) },
    { weight: 1, arbitrary: hostileValue.map((v) => JSON.stringify(v) ?? 'null') },
    {
      weight: 1,
      arbitrary: fc.record({ depth: fc.constantFrom(10, 1_000, 20_000), kind: fc.constantFrom('array' as const, 'object' as const) }).map(({ depth, kind }) => deepNesting(depth, kind)),
    },
    { weight: 1, arbitrary: fc.constantFrom('', '{', '{"a":', 'nul', '{"a":1}}', "{'a':1}", '{"a":1,}', '\u0000', '\ufeff{}', '[1,2', '1'.repeat(400), '"\\ud800"') },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }) },
  );
}

/** Header values an attacker may put in Authorization (besides a valid token). */
export function hostileAuthorization(validToken: string): fc.Arbitrary<string | undefined> {
  const [head, body] = validToken.split('.');
  return fc.oneof(
    fc.constant(undefined),
    fc.constantFrom(
      '',
      'Bearer',
      'Bearer ',
      'Bearer  ',
      `bearer ${validToken}`,
      `Bearer  ${validToken}`,
      `Bearer ${validToken} extra`,
      `Bearer ${validToken}.`,
      `Basic ${Buffer.from('alice:password').toString('base64')}`,
      `Bearer ${head}.${body}.`,
      `Bearer ${head}.${body}`,
      `Bearer ${'A'.repeat(20_000)}`,
      `Bearer ${validToken.slice(0, -3)}AAA`,
      'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.',
      "Bearer ' OR '1'='1",
      'Bearer ../../etc/passwd',
    ),
    fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 80 }).map((s) => `Bearer ${s}`),
  );
}

/**
 * encodeURIComponent for any string: a lone surrogate (which makes encodeURIComponent throw) is
 * sent as the UTF-8 of U+FFFD, as a browser would.
 */
export function percentEncode(text: string): string {
  return [...Buffer.from(text, 'utf8')].map((b) => (/[A-Za-z0-9\-_.!~*'()]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`)).join('');
}

/** Printable ASCII only: what a header value may carry on the wire. */
export const headerSafe = (s: string): string => s.replace(/[^\x20-\x7e]/g, '');
