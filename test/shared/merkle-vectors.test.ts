/**
 * Every inclusion and consistency vector of the RFC 6962 reference implementation
 * (test/fixtures/merkle, from transparency-dev/merkle): the valid ones verify, every invalid one
 * is refused with LOG_INCLUSION_INVALID or LOG_CONSISTENCY_INVALID, never another exception.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ErrorCode, isE2EEError } from '../../shared/errors.js';
import { verifyConsistency, verifyInclusion } from '../../shared/merkle.js';

const ROOT = new URL('../fixtures/merkle/', import.meta.url).pathname;

interface InclusionVector {
  leafIdx: number;
  treeSize: number;
  root: string;
  leafHash: string;
  proof: string[] | null;
  desc: string;
  wantErr: boolean;
}

interface ConsistencyVector {
  size1: number;
  size2: number;
  root1: string;
  root2: string;
  proof: string[] | null;
  desc: string;
  wantErr: boolean;
}

/** [relative path, parsed case] of every JSON file under `kind`. */
function vectors<T>(kind: string): Array<[string, T]> {
  const dir = join(ROOT, kind);
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.json'))
    .sort()
    .map((file) => [`${kind}/${file}`, JSON.parse(readFileSync(join(dir, file), 'utf8')) as T]);
}

const bytes = (b64: string): Uint8Array => new Uint8Array(Buffer.from(b64, 'base64'));

/** What verifying did: 'ok', or the error code it threw (anything else fails the test). */
function outcome(verify: () => void): string {
  try {
    verify();
    return 'ok';
  } catch (err) {
    if (!isE2EEError(err)) throw err;
    return err.code;
  }
}

const inclusion = vectors<InclusionVector>('inclusion');
const consistency = vectors<ConsistencyVector>('consistency');

describe('RFC 6962 reference vectors', () => {
  it('has them all (the copy is complete)', () => {
    expect(inclusion.length).toBe(98);
    expect(consistency.length).toBe(98);
    expect([...inclusion, ...consistency].filter(([, v]) => !v.wantErr).length).toBe(12);
  });

  it.each(inclusion)('inclusion %s', (_file, v) => {
    const result = outcome(() =>
      verifyInclusion({ index: v.leafIdx, size: v.treeSize, leafHash: bytes(v.leafHash), proof: (v.proof ?? []).map(bytes), root: bytes(v.root) }),
    );
    expect(result, v.desc).toBe(v.wantErr ? ErrorCode.LOG_INCLUSION_INVALID : 'ok');
  });

  it.each(consistency)('consistency %s', (_file, v) => {
    const result = outcome(() =>
      verifyConsistency({ size1: v.size1, size2: v.size2, root1: bytes(v.root1), root2: bytes(v.root2), proof: (v.proof ?? []).map(bytes) }),
    );
    expect(result, v.desc).toBe(v.wantErr ? ErrorCode.LOG_CONSISTENCY_INVALID : 'ok');
  });
});
