/**
 * shared/merkle.ts against a naive tree written straight from RFC 9162 section 2.1 (recursive
 * MTH, PATH and PROOF over the leaf list): the same roots and proofs for every size, proofs that
 * verify, and any altered proof, index, size or root refused with its typed error. Sizes near
 * 2^53 run on a tree of identical leaves, whose perfect subtrees need no storage.
 */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../shared/errors.js';
import {
  EMPTY_ROOT,
  MerkleTree,
  consistencyPath,
  inclusionPath,
  leafHash,
  nodeHash,
  rangeHash,
  rangeNodes,
  rootOf,
  verifyConsistency,
  verifyInclusion,
  type NodeReader,
} from '../../shared/merkle.js';
import { runs } from '../support/fast-check.js';
import { errorCodeOf } from '../support/errors.js';

// ---- The naive tree: node:crypto's SHA-256 and the RFC's recursive definitions, nothing shared.

const sha = (...parts: Uint8Array[]): Uint8Array => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};
const naiveLeaf = (data: Uint8Array) => sha(Uint8Array.of(0), data);
const largestPow2Below = (n: number) => 2 ** Math.floor(Math.log2(n - 1));

function mth(d: Uint8Array[]): Uint8Array {
  if (d.length === 0) return sha();
  if (d.length === 1) return naiveLeaf(d[0]!);
  const k = largestPow2Below(d.length);
  return sha(Uint8Array.of(1), mth(d.slice(0, k)), mth(d.slice(k)));
}

function path(m: number, d: Uint8Array[]): Uint8Array[] {
  if (d.length === 1) return [];
  const k = largestPow2Below(d.length);
  return m < k ? [...path(m, d.slice(0, k)), mth(d.slice(k))] : [...path(m - k, d.slice(k)), mth(d.slice(0, k))];
}

function subproof(m: number, d: Uint8Array[], b: boolean): Uint8Array[] {
  if (m === d.length) return b ? [] : [mth(d)];
  const k = largestPow2Below(d.length);
  return m <= k ? [...subproof(m, d.slice(0, k), b), mth(d.slice(k))] : [...subproof(m - k, d.slice(k), false), mth(d.slice(0, k))];
}

// ---- Helpers

const leaves = (n: number) => Array.from({ length: n }, (_, i) => new TextEncoder().encode(`leaf ${i}`));
const treeOf = (d: Uint8Array[]) => new MerkleTree(d.map(leafHash));
const hex = (bytes: Uint8Array[]) => bytes.map((b) => Buffer.from(b).toString('hex'));


const flipBit = (bytes: Uint8Array, bit: number) => {
  const out = bytes.slice();
  out[bit >> 3]! ^= 1 << (bit & 7);
  return out;
};

/** 1..maxSize leaves with an index and a second size, for proofs. */
const sizes = (maxSize: number) =>
  fc.integer({ min: 1, max: maxSize }).chain((size) => fc.record({ size: fc.constant(size), index: fc.nat(size - 1), other: fc.integer({ min: 1, max: size }) }));

describe('hashes and roots', () => {
  it('hashes leaves and nodes as RFC 6962 does', () => {
    const data = new TextEncoder().encode('hello');
    expect(leafHash(data)).toEqual(naiveLeaf(data));
    expect(nodeHash(naiveLeaf(data), sha())).toEqual(sha(Uint8Array.of(1), naiveLeaf(data), sha()));
    expect(Buffer.from(EMPTY_ROOT).toString('hex')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });

  it('gives every prefix of a tree the naive root, from the list and from the stored tree', () => {
    const d = leaves(70);
    const tree = treeOf(d);
    for (let n = 0; n <= d.length; n++) {
      const want = mth(d.slice(0, n));
      expect(rootOf(d.slice(0, n).map(leafHash)), `rootOf ${n}`).toEqual(want);
      expect(tree.root(n), `tree.root ${n}`).toEqual(want);
    }
  });

  it('stores 2n - 1 nodes at most and covers any range with its perfect subtrees', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 300 }), fc.nat(), fc.nat(), (n, a, b) => {
        const d = leaves(n);
        const tree = treeOf(d);
        const [start, end] = [a % n, (a % n) + 1 + (b % (n - (a % n)))];
        expect(rangeHash({ start, end }, tree.node)).toEqual(mth(d.slice(start, end)));
        const covered = rangeNodes({ start, end }).reduce((sum, node) => sum + 2 ** node.level, 0);
        expect(covered).toBe(end - start);
      }),
      { numRuns: runs(200) },
    );
  });
});

describe('inclusion proofs', () => {
  it('match the naive PATH and verify, for every size and index', () => {
    fc.assert(
      fc.property(sizes(300), ({ size, index }) => {
        const d = leaves(size);
        const proof = treeOf(d).inclusionProof(index);
        expect(hex(proof)).toEqual(hex(path(index, d)));
        verifyInclusion({ index, size, leafHash: naiveLeaf(d[index]!), proof, root: mth(d) });
      }),
      { numRuns: runs(300) },
    );
  });

  it('are refused with LOG_INCLUSION_INVALID when anything is altered', () => {
    fc.assert(
      fc.property(sizes(200), fc.nat(), fc.nat(), ({ size, index, other }, pick, bit) => {
        const d = leaves(size + 1);
        const tree = treeOf(d);
        const claim = { index, size, leafHash: naiveLeaf(d[index]!), proof: tree.inclusionProof(index, size), root: tree.root(size) };
        const altered = [
          { ...claim, leafHash: flipBit(claim.leafHash, bit % 256) },
          { ...claim, root: flipBit(claim.root, bit % 256) },
          { ...claim, index: (index + 1 + (pick % size)) % size === index ? size : (index + 1 + (pick % size)) % size },
          { ...claim, size: other === size ? size + 1 : other, root: tree.root(other === size ? size + 1 : other) },
          { ...claim, proof: [...claim.proof, claim.root] },
        ];
        if (claim.proof.length > 0) {
          const at = pick % claim.proof.length;
          altered.push({ ...claim, proof: claim.proof.map((h, i) => (i === at ? flipBit(h, bit % 256) : h)) });
          altered.push({ ...claim, proof: claim.proof.slice(1) });
        }
        for (const bad of altered) {
          expect(errorCodeOf(() => verifyInclusion(bad))).toBe(ErrorCode.LOG_INCLUSION_INVALID);
        }
      }),
      { numRuns: runs(200) },
    );
  });
});

describe('consistency proofs', () => {
  it('match the naive PROOF and verify, for every pair of sizes', () => {
    fc.assert(
      fc.property(sizes(300), ({ size, other }) => {
        const d = leaves(size);
        const proof = treeOf(d).consistencyProof(other);
        expect(hex(proof)).toEqual(hex(subproof(other, d, true)));
        verifyConsistency({ size1: other, size2: size, root1: mth(d.slice(0, other)), root2: mth(d), proof });
      }),
      { numRuns: runs(300) },
    );
  });

  it('are refused with LOG_CONSISTENCY_INVALID when anything is altered, a rollback included', () => {
    fc.assert(
      fc.property(sizes(200), fc.nat(), fc.nat(), ({ size, other }, pick, bit) => {
        const tree = treeOf(leaves(size + 1));
        const claim = { size1: other, size2: size, root1: tree.root(other), root2: tree.root(size), proof: tree.consistencyProof(other, size) };
        const altered = [
          { ...claim, root1: flipBit(claim.root1, bit % 256) },
          { ...claim, root2: flipBit(claim.root2, bit % 256) },
          { ...claim, size2: size + 1, root2: tree.root(size + 1) },
          ...(other < size ? [{ ...claim, size1: size, size2: other, root1: claim.root2, root2: claim.root1 }] : []), // a rollback
          { ...claim, size1: 0, root1: EMPTY_ROOT, proof: [] },
          { ...claim, proof: [...claim.proof, claim.root2] },
        ];
        if (claim.proof.length > 0) {
          const at = pick % claim.proof.length;
          altered.push({ ...claim, proof: claim.proof.map((h, i) => (i === at ? flipBit(h, bit % 256) : h)) });
          altered.push({ ...claim, proof: claim.proof.slice(0, -1) });
        }
        for (const bad of altered) {
          expect(errorCodeOf(() => verifyConsistency(bad))).toBe(ErrorCode.LOG_CONSISTENCY_INVALID);
        }
      }),
      { numRuns: runs(200) },
    );
  });
});

describe('sizes up to 2^53 - 1', () => {
  // A tree whose leaves are all the same: the perfect subtree of level h has one hash whatever its
  // index, so any size can be proved without storing anything.
  const same: Uint8Array[] = [leafHash(new TextEncoder().encode('same'))];
  for (let h = 1; h <= 53; h++) same.push(nodeHash(same[h - 1]!, same[h - 1]!));
  const read: NodeReader = ({ level }) => same[level]!;
  const big = fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER });

  it('proves inclusion and consistency without 32-bit arithmetic going wrong', () => {
    fc.assert(
      fc.property(big, big, big, (a, b, c) => {
        const size = Math.max(a, b);
        const [index, size1] = [c % size, Math.min(a, b)];
        const root = rangeHash({ start: 0, end: size }, read);
        const proof = inclusionPath(index, size).map((r) => rangeHash(r, read));
        expect(proof.length).toBeLessThanOrEqual(53);
        verifyInclusion({ index, size, leafHash: same[0]!, proof, root });
        const consistency = consistencyPath(size1, size).map((r) => rangeHash(r, read));
        verifyConsistency({ size1, size2: size, root1: rangeHash({ start: 0, end: size1 }, read), root2: root, proof: consistency });
      }),
      { numRuns: runs(100) },
    );
  });

  it('refuses an index or size that is not a safe integer, or values that are not bytes, with the typed error', () => {
    const claim = { index: 0, size: 1, leafHash: same[0]!, proof: [], root: same[0]! };
    for (const index of [-1, 1, 0.5, 2 ** 64 - 1, Number.NaN]) {
      expect(errorCodeOf(() => verifyInclusion({ ...claim, index }))).toBe(ErrorCode.LOG_INCLUSION_INVALID);
    }
    expect(errorCodeOf(() => verifyInclusion({ ...claim, size: 2 ** 53 }))).toBe(ErrorCode.LOG_INCLUSION_INVALID);
    for (const hostile of [{ root: undefined }, { leafHash: 'x' }, { proof: null }, { proof: [null] }]) {
      expect(errorCodeOf(() => verifyInclusion({ ...claim, ...(hostile as object) }))).toBe(ErrorCode.LOG_INCLUSION_INVALID);
    }
    expect(errorCodeOf(() => verifyConsistency({ size1: 1, size2: 2, root1: same[0]!, root2: null as never, proof: [same[0]!] }))).toBe(ErrorCode.LOG_CONSISTENCY_INVALID);
    expect(errorCodeOf(() => verifyConsistency({ size1: 1, size2: 2 ** 53, root1: same[0]!, root2: same[0]!, proof: [] }))).toBe(ErrorCode.LOG_CONSISTENCY_INVALID);
  });
});

describe('the in-memory tree', () => {
  it('refuses proofs beyond its size or from the empty tree with INVALID_ARGUMENT', () => {
    const tree = treeOf(leaves(5));
    expect(errorCodeOf(() => tree.inclusionProof(5))).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(errorCodeOf(() => tree.inclusionProof(0, 6))).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(errorCodeOf(() => tree.consistencyProof(0))).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(errorCodeOf(() => tree.consistencyProof(3, 2))).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(tree.consistencyProof(5)).toEqual([]);
    expect(new MerkleTree().root()).toEqual(EMPTY_ROOT);
  });
});
