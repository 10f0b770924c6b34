/**
 * The error catalogue (shared/errors.ts) and the docs list the same codes with the same statuses:
 * docs/PROTOCOL.md section 13 and the tables of docs/API.md "Errors", both ways.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { E2EEError, ErrorCode, errorStatus, isE2EEError, isErrorCode } from '../../shared/errors.js';

function section(file: string, heading: string): string {
  const text = readFileSync(new URL(`../../docs/${file}`, import.meta.url), 'utf8');
  const start = text.indexOf(`\n${heading}\n`);
  expect(start, `${file} has "${heading}"`).toBeGreaterThanOrEqual(0);
  const level = heading.split(' ')[0]!;
  const end = text.indexOf(`\n${level} `, start + heading.length + 1);
  return text.slice(start, end === -1 ? undefined : end);
}

/** [code, status] of every table row whose first cells are a status and codes in backticks (wildcards skipped). */
function documented(markdown: string, columns: 'code-status' | 'status-code'): Array<[string, number]> {
  const pairs: Array<[string, number]> = [];
  for (const line of markdown.split('\n')) {
    const cells = line.split('|').map((cell) => cell.trim());
    if (cells.length < 4) continue;
    const [codes, status] = columns === 'code-status' ? [cells[1]!, cells[2]!] : [cells[2]!, cells[1]!];
    if (!/^\d{3}$/.test(status)) continue;
    for (const [, code] of codes.matchAll(/`([A-Z_]+)`/g)) pairs.push([code!, Number(status)]);
  }
  return pairs;
}

const protocol = documented(section('PROTOCOL.md', '## 13. Error codes'), 'code-status');
const api = documented(section('API.md', '## Errors'), 'status-code');

describe('the error catalogue', () => {
  it('docs give every documented code the catalogue status', () => {
    for (const [code, status] of [...protocol, ...api]) {
      expect(isErrorCode(code), `${code} is in the catalogue`).toBe(true);
      expect(status, code).toBe(errorStatus(code as ErrorCode));
    }
  });

  it('docs list every code of the catalogue', () => {
    const listed = new Set([...protocol, ...api].map(([code]) => code));
    expect([...listed].sort()).toEqual(Object.keys(ErrorCode).sort());
  });

  it('PROTOCOL.md lists each code once', () => {
    const codes = protocol.map(([code]) => code);
    expect(codes.length).toBe(new Set(codes).size);
  });

  it('maps each name to itself and carries code, status and typed details', () => {
    for (const [name, code] of Object.entries(ErrorCode)) expect(code).toBe(name);
    const err: unknown = new E2EEError(ErrorCode.NO_CARDS, 'nobody', { details: { identities: ['carol'] } });
    expect(isE2EEError(err, ErrorCode.NO_CARDS)).toBe(true);
    if (!isE2EEError(err, ErrorCode.NO_CARDS)) return;
    expect(err.details?.identities).toEqual(['carol']);
    expect(err.status).toBe(409);
    expect(isE2EEError(err, ErrorCode.KEY_IN_USE)).toBe(false);
    expect(JSON.parse(JSON.stringify(err))).toEqual({ code: 'NO_CARDS', message: 'nobody' });
  });
});
