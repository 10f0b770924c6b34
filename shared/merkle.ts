/**
 * RFC 6962 Merkle trees (SHA-256, leaf = H(0x00 || data), node = H(0x01 || left || right)) and
 * their proofs as RFC 9162 section 2.1 defines them: the hash of a list, inclusion and
 * consistency proofs, made and verified, for any tree size up to 2^53 - 1 (JavaScript's safe
 * integers). docs/PROTOCOL.md section 17.1.
 *
 * Proofs are made from "perfect" subtrees (2^level leaves from a multiple of 2^level), the only
 * nodes a log has to store: `inclusionPath` and `consistencyPath` say which leaf ranges a proof
 * needs, `rangeNodes` which stored nodes cover them, so a store can fetch them all in one query
 * and `rangeHash` fold them with a synchronous reader. `MerkleTree` keeps them in memory.
 */
// SHA-256 from @noble/hashes: synchronous and browser-safe. node:crypto is Node-only, libsodium's
// non-sumo build has no SHA-256, and crypto.subtle is asynchronous, which would make every one of
// a proof's hashes a promise.
import { sha256 } from '@noble/hashes/sha2.js';
import { MERKLE_HASH_BYTES, MERKLE_LEAF_PREFIX, MERKLE_NODE_PREFIX } from './constants.js';
import { equalBytes } from './encoding.js';
import { E2EEError, ErrorCode } from './errors.js';

/** Leaves [start, end) of a tree. */
export interface LeafRange {
  start: number;
  end: number;
}

/** A perfect subtree: the 2^level leaves from index * 2^level. Level 0 holds the leaf hashes. */
export interface TreeNode {
  level: number;
  index: number;
}

/** Reads a stored perfect subtree's hash (32 bytes). */
export type NodeReader = (node: TreeNode) => Uint8Array;

/** The root of the empty tree: SHA-256 of nothing. */
export const EMPTY_ROOT: Uint8Array = sha256(new Uint8Array(0));

/** The leaf hash of `leaf`'s bytes: SHA-256(0x00 || leaf). */
export function leafHash(leaf: Uint8Array): Uint8Array {
  return sha256.create().update(new Uint8Array([MERKLE_LEAF_PREFIX])).update(leaf).digest();
}

/** An interior node: SHA-256(0x01 || left || right). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  return sha256.create().update(new Uint8Array([MERKLE_NODE_PREFIX])).update(left).update(right).digest();
}

/** The largest power of two below n (n >= 2). A loop, not Math.log2, which rounds near 2^53. */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function isPerfect(start: number, size: number): boolean {
  return size === splitPoint(size + 1) && start % size === 0;
}

/** The root of a tree over these leaf hashes (RFC 9162 MTH): pairs each level, carrying an odd last node up. */
export function rootOf(leafHashes: readonly Uint8Array[]): Uint8Array {
  if (leafHashes.length === 0) return EMPTY_ROOT;
  let level = [...leafHashes];
  while (level.length > 1) {
    const next: Uint8Array[] = [];
    for (let i = 0; i + 1 < level.length; i += 2) next.push(nodeHash(level[i]!, level[i + 1]!));
    if (level.length % 2 === 1) next.push(level[level.length - 1]!);
    level = next;
  }
  return level[0]!;
}

/** MTH(leaves[start:end]) as RFC 9162 section 2.1.1 splits it, down to perfect subtrees. */
function foldRange<T>(range: LeafRange, perfect: (node: TreeNode) => T, join: (left: T, right: T) => T): T {
  const { start, end } = range;
  const size = end - start;
  if (!Number.isSafeInteger(start) || start < 0 || !Number.isSafeInteger(end) || size < 1) {
    throw new E2EEError(ErrorCode.INVALID_ARGUMENT, `[${start}, ${end}) is not a range of leaves`);
  }
  if (isPerfect(start, size)) return perfect({ level: Math.log2(size), index: start / size }); // log2 of a power of two is exact
  const k = splitPoint(size);
  return join(foldRange({ start, end: start + k }, perfect, join), foldRange({ start: start + k, end }, perfect, join));
}

/** The perfect subtrees whose hashes make up MTH(leaves[start:end]), left to right. */
export function rangeNodes(range: LeafRange): TreeNode[] {
  return foldRange<TreeNode[]>(range, (node) => [node], (left, right) => [...left, ...right]);
}

/** MTH(leaves[start:end]) from the stored nodes. */
export function rangeHash(range: LeafRange, read: NodeReader): Uint8Array {
  return foldRange(range, read, nodeHash);
}

/** The ranges whose hashes form PATH(index, D[size]) (RFC 9162 section 2.1.3.1), leaf to root. */
export function inclusionPath(index: number, size: number): LeafRange[] {
  checkIndex(index, size, ErrorCode.INVALID_ARGUMENT);
  const path: LeafRange[] = [];
  let [start, end] = [0, size];
  while (end - start > 1) {
    const k = splitPoint(end - start);
    if (index < start + k) {
      path.push({ start: start + k, end });
      end = start + k;
    } else {
      path.push({ start, end: start + k });
      start += k;
    }
  }
  return path.reverse();
}

/** The ranges whose hashes form PROOF(size1, D[size2]) (RFC 9162 section 2.1.4.1), bottom up. */
export function consistencyPath(size1: number, size2: number): LeafRange[] {
  checkSizes(size1, size2, ErrorCode.INVALID_ARGUMENT);
  const path: LeafRange[] = [];
  if (size1 === size2) return path;
  // SUBPROOF(m, D[start:end], b), unrolled: `whole` is b, true while the old tree is a prefix
  // of the current range whose hash the verifier already holds (its old root).
  let [m, start, end, whole] = [size1, 0, size2, true];
  while (m !== end - start) {
    const k = splitPoint(end - start);
    if (m <= k) {
      path.push({ start: start + k, end });
      end = start + k;
    } else {
      path.push({ start, end: start + k });
      m -= k;
      start += k;
      whole = false;
    }
  }
  if (!whole) path.push({ start, end });
  return path.reverse();
}

/** The inclusion proof of leaf `index` in the tree of `size` leaves, read from the stored nodes. */
export function inclusionProof(index: number, size: number, read: NodeReader): Uint8Array[] {
  return inclusionPath(index, size).map((range) => rangeHash(range, read));
}

/** The consistency proof from the tree of `size1` leaves to the tree of `size2`, read from the stored nodes. */
export function consistencyProof(size1: number, size2: number, read: NodeReader): Uint8Array[] {
  return consistencyPath(size1, size2).map((range) => rangeHash(range, read));
}

function checkIndex(index: number, size: number, code: ErrorCode): void {
  if (!Number.isSafeInteger(size) || size < 1) throw new E2EEError(code, `tree size ${size} is not a positive safe integer`);
  if (!Number.isSafeInteger(index) || index < 0 || index >= size) throw new E2EEError(code, `leaf index ${index} is not in a tree of ${size}`);
}

// A consistency proof from the empty tree proves nothing (and is refused, as by the RFC 6962
// reference implementation): a client that holds no tree yet needs none.
function checkSizes(size1: number, size2: number, code: ErrorCode): void {
  if (!Number.isSafeInteger(size2) || size2 < 1) throw new E2EEError(code, `tree size ${size2} is not a positive safe integer`);
  if (!Number.isSafeInteger(size1) || size1 < 1) throw new E2EEError(code, `tree size ${size1} is not a positive safe integer`);
  if (size1 > size2) throw new E2EEError(code, `the older tree (${size1}) is larger than the newer (${size2})`);
}

function checkHashes(proof: readonly Uint8Array[], expected: number, code: ErrorCode): void {
  if (!Array.isArray(proof)) throw new E2EEError(code, 'the proof is not a list of hashes');
  if (proof.length !== expected) throw new E2EEError(code, `the proof has ${proof.length} hashes where ${expected} are needed`);
  for (const hash of proof) {
    if (!(hash instanceof Uint8Array) || hash.length !== MERKLE_HASH_BYTES) throw new E2EEError(code, 'a proof hash is not 32 bytes');
  }
}

// Roots are compared as given (the reference vectors compare roots of any length for equal sizes).
function checkRoots(roots: unknown[], code: ErrorCode): void {
  if (!roots.every((root) => root instanceof Uint8Array)) throw new E2EEError(code, 'a root hash is not bytes');
}

const lsb = (n: number): boolean => n % 2 === 1;
const half = (n: number): number => Math.floor(n / 2);

export interface InclusionClaim {
  index: number;
  size: number;
  /** The leaf hash (leafHash of the leaf's bytes), 32 bytes. */
  leafHash: Uint8Array;
  proof: readonly Uint8Array[];
  root: Uint8Array;
}

/**
 * Verifies that `leafHash` is leaf `index` of the tree of `size` leaves whose root is `root`
 * (RFC 9162 section 2.1.3.2). Throws LOG_INCLUSION_INVALID otherwise.
 */
export function verifyInclusion(claim: InclusionClaim): void {
  const { index, size, leafHash: hash, proof, root } = claim;
  const code = ErrorCode.LOG_INCLUSION_INVALID;
  checkIndex(index, size, code);
  checkRoots([root], code);
  if (!(hash instanceof Uint8Array) || hash.length !== MERKLE_HASH_BYTES) throw new E2EEError(code, 'the leaf hash is not 32 bytes');
  checkHashes(proof, inclusionPath(index, size).length, code); // so the RFC's "sn is 0" failure within the loop cannot happen
  let [fn, sn, r] = [index, size - 1, hash];
  for (const p of proof) {
    if (lsb(fn) || fn === sn) {
      r = nodeHash(p, r);
      while (!lsb(fn) && fn !== 0) [fn, sn] = [half(fn), half(sn)];
    } else {
      r = nodeHash(r, p);
    }
    [fn, sn] = [half(fn), half(sn)];
  }
  if (sn !== 0 || !equalBytes(r, root)) throw new E2EEError(code, `leaf ${index} is not in the tree of ${size} with that root`);
}

export interface ConsistencyClaim {
  size1: number;
  size2: number;
  root1: Uint8Array;
  root2: Uint8Array;
  proof: readonly Uint8Array[];
}

/**
 * Verifies that the tree of `size2` leaves with `root2` extends the tree of `size1` with `root1`
 * (RFC 9162 section 2.1.4.2; equal sizes need equal roots and an empty proof). Throws
 * LOG_CONSISTENCY_INVALID otherwise, also for size1 = 0 or size1 > size2 (a rollback).
 */
export function verifyConsistency(claim: ConsistencyClaim): void {
  const { size1, size2, root1, root2, proof } = claim;
  const code = ErrorCode.LOG_CONSISTENCY_INVALID;
  checkSizes(size1, size2, code);
  checkRoots([root1, root2], code);
  checkHashes(proof, consistencyPath(size1, size2).length, code); // as in verifyInclusion
  if (size1 === size2) {
    if (!equalBytes(root1, root2)) throw new E2EEError(code, `two different roots for the tree of ${size1}`);
    return;
  }
  const path = isPerfect(0, size1) ? [root1, ...proof] : [...proof];
  let [fn, sn] = [size1 - 1, size2 - 1];
  while (lsb(fn)) [fn, sn] = [half(fn), half(sn)];
  let fr = path[0]!;
  let sr = path[0]!;
  for (const c of path.slice(1)) {
    if (lsb(fn) || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (!lsb(fn) && fn !== 0) [fn, sn] = [half(fn), half(sn)];
    } else {
      sr = nodeHash(sr, c);
    }
    [fn, sn] = [half(fn), half(sn)];
  }
  if (sn !== 0 || !equalBytes(fr, root1) || !equalBytes(sr, root2)) {
    throw new E2EEError(code, `the tree of ${size2} does not extend the tree of ${size1} with those roots`);
  }
}

/** A tree held in memory: every perfect subtree's hash, 2n - 1 hashes for n leaves. */
export class MerkleTree {
  /** levels[h][i]: the perfect subtree of 2^h leaves from i * 2^h. */
  private readonly levels: Uint8Array[][] = [[]];

  constructor(leafHashes: Iterable<Uint8Array> = []) {
    for (const hash of leafHashes) this.append(hash);
  }

  get size(): number {
    return this.levels[0]!.length;
  }

  /** Adds a leaf by its leaf hash, completing the perfect subtrees it closes. */
  append(hash: Uint8Array): void {
    let level = 0;
    this.levels[0]!.push(hash);
    while (this.levels[level]!.length % 2 === 0) {
      const nodes = this.levels[level]!;
      (this.levels[level + 1] ??= []).push(nodeHash(nodes[nodes.length - 2]!, nodes[nodes.length - 1]!));
      level += 1;
    }
  }

  readonly node: NodeReader = ({ level, index }) => {
    const hash = this.levels[level]?.[index];
    if (!hash) throw new E2EEError(ErrorCode.INVALID_ARGUMENT, `no node ${level}/${index} in a tree of ${this.size}`);
    return hash;
  };

  /** The root of the tree's first `size` leaves (default: all). */
  root(size = this.size): Uint8Array {
    this.checkSize(size);
    return size === 0 ? EMPTY_ROOT : rangeHash({ start: 0, end: size }, this.node);
  }

  inclusionProof(index: number, size = this.size): Uint8Array[] {
    this.checkSize(size);
    return inclusionProof(index, size, this.node);
  }

  consistencyProof(size1: number, size2 = this.size): Uint8Array[] {
    this.checkSize(size2);
    return consistencyProof(size1, size2, this.node);
  }

  private checkSize(size: number): void {
    if (!Number.isSafeInteger(size) || size < 0 || size > this.size) {
      throw new E2EEError(ErrorCode.INVALID_ARGUMENT, `tree size ${size} is not between 0 and ${this.size}`);
    }
  }
}
