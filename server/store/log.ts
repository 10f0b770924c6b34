/**
 * The transparency log's rules both stores share (docs/PROTOCOL.md 17.6): the next event of an
 * identity's chain, the perfect subtrees a new leaf closes, the events of cards registered
 * before the log (migration 8), and the row mappers. Each store only reads the facts in its
 * transaction and writes what these return.
 */
import { MerkleTree, leafHash, nodeHash, type TreeNode } from '../../shared/merkle.js';
import { encodeCardEvent, type CardEvent, type CardEventKind } from '../../shared/log-event.js';
import { MERKLE_HASH_BYTES } from '../../shared/constants.js';
import { int, text, type Row } from './rows.js';
import type { LogCheckpointRecord, LogCosignatureRecord, LogEventRecord } from './types.js';

/** The kinds as the leaf encodes them, and as log_events.kind holds them. */
export const KIND_CODES: Record<CardEventKind, number> = { registration: 1, revocation: 2 };

/** An identity's latest event: what its next event names (seq, leaf hash, time). */
export interface ChainHead {
  seq: number;
  hash: Uint8Array;
  time: number;
}

/** A row of log_events or log_nodes to insert. */
export interface LogRows {
  event: { idx: number; identity: string; seq: number; cardId: string; kind: number; time: number; leaf: Buffer };
  nodes: { level: number; idx: number; hash: Buffer }[];
}

/** The previous hash of an identity's first event. */
const NO_PREVIOUS = new Uint8Array(MERKLE_HASH_BYTES);

/** A Buffer view of bytes, as both drivers bind BLOB and BYTEA values. */
export const buffer = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/**
 * The identity's next event after `head`, by nextCardEvent's rule (seq and previous from the head,
 * the time never before the head's). Without its chain check: the card store's own rules (one card
 * per id, revoked once) already hold, and the check would encode and hash the leaf a second time
 * on every card change; appendRows encodes it once and refuses a malformed one.
 */
export function nextEvent(identity: string, head: ChainHead | null, kind: CardEventKind, cardId: string, time: number): CardEvent {
  return { kind, identity, seq: head ? head.seq + 1 : 0, time: Math.max(time, head?.time ?? 0), previous: head?.hash ?? NO_PREVIOUS, cardId };
}

/** The stored nodes a leaf appended at `size` joins with: the left siblings of the subtrees it closes. */
export function siblingsOf(size: number): TreeNode[] {
  const siblings: TreeNode[] = [];
  for (let level = 0, index = size; index % 2 === 1; level += 1, index = (index - 1) / 2) siblings.push({ level, index: index - 1 });
  return siblings;
}

/** The rows of `event` appended as leaf `size`, given the hashes of siblingsOf(size) in order. */
export function appendRows(size: number, event: CardEvent, siblings: readonly Uint8Array[]): LogRows {
  const leaf = encodeCardEvent(event);
  let hash = leafHash(leaf);
  const nodes = [{ level: 0, idx: size, hash: buffer(hash) }];
  let index = size;
  siblings.forEach((left, level) => {
    hash = nodeHash(left, hash);
    index = (index - 1) / 2;
    nodes.push({ level: level + 1, idx: index, hash: buffer(hash) });
  });
  const { identity, seq, cardId, kind, time } = event;
  return { event: { idx: size, identity, seq, cardId, kind: KIND_CODES[kind], time, leaf: buffer(leaf) }, nodes };
}

export const INSERT_EVENT = 'INSERT INTO log_events (idx, identity, chain_seq, card_id, kind, event_time, leaf) VALUES (?, ?, ?, ?, ?, ?, ?)';
export const INSERT_NODE = 'INSERT INTO log_nodes (level, idx, hash) VALUES (?, ?, ?)';

export const eventValues = ({ event: e }: LogRows): unknown[] => [e.idx, e.identity, e.seq, e.cardId, e.kind, e.time, e.leaf];

/** What migration 8 reads: every card registered before the log. */
export const LOG_BACKFILL_SELECT = 'SELECT id, identity, registered_at, revoked_at FROM cards';

/**
 * The events of cards registered before the log, in one deterministic order: by time (a
 * registration's registered_at; a revocation's revoked_at, never before its registration), then
 * registrations before revocations, then by card id. Each identity's chain follows from that
 * order; the tree is built in memory and written whole (2n - 1 nodes).
 */
export function logBackfill(cards: readonly Row[]): (readonly [string, readonly unknown[]])[] {
  // The migration's own connection reads BIGINT as text (the pool's parser is not set there).
  const seconds = (row: Row, column: string) => int({ [column]: typeof row[column] === 'string' ? Number(row[column]) : row[column] }, column);
  const events = cards.flatMap((row) => {
    const [cardId, identity, registeredAt] = [text(row, 'id'), text(row, 'identity'), seconds(row, 'registered_at')];
    const registration = { kind: 'registration' as const, cardId, identity, time: registeredAt };
    if (row.revoked_at === null) return [registration];
    return [registration, { kind: 'revocation' as const, cardId, identity, time: Math.max(seconds(row, 'revoked_at'), registeredAt) }];
  });
  events.sort((a, b) => a.time - b.time || KIND_CODES[a.kind] - KIND_CODES[b.kind] || (a.cardId < b.cardId ? -1 : a.cardId > b.cardId ? 1 : 0));
  const heads = new Map<string, ChainHead>();
  const tree = new MerkleTree();
  const statements: (readonly [string, readonly unknown[]])[] = [];
  for (const e of events) {
    const event = nextEvent(e.identity, heads.get(e.identity) ?? null, e.kind, e.cardId, e.time);
    const rows = appendRows(tree.size, event, siblingsOf(tree.size).map(tree.node));
    tree.append(rows.nodes[0]!.hash);
    heads.set(e.identity, { seq: event.seq, hash: rows.nodes[0]!.hash, time: event.time });
    statements.push([INSERT_EVENT, eventValues(rows)], ...rows.nodes.map((n) => [INSERT_NODE, [n.level, n.idx, n.hash]] as const));
  }
  return statements;
}

/** BLOB (SQLite) and BYTEA (PostgreSQL) both arrive as a Buffer; handed on as a plain Uint8Array. */
export function bytes(row: Row, column: string): Uint8Array {
  const value = row[column];
  if (value instanceof Uint8Array) return new Uint8Array(value);
  throw new TypeError(`store: column "${column}" expected bytes, got ${typeof value}`);
}

export function toLogEvent(row: Row): LogEventRecord {
  return {
    index: int(row, 'idx'),
    identity: text(row, 'identity'),
    seq: int(row, 'chain_seq'),
    cardId: text(row, 'card_id'),
    kind: int(row, 'kind') === KIND_CODES.registration ? 'registration' : 'revocation',
    leaf: bytes(row, 'leaf'),
  };
}

export function toLogCheckpoint(row: Row): LogCheckpointRecord {
  return { size: int(row, 'size'), rootHash: bytes(row, 'root_hash'), note: text(row, 'note'), createdAtMs: int(row, 'created_at_ms') };
}

export function toLogCosignature(row: Row): LogCosignatureRecord {
  return { name: text(row, 'key_name'), keyId: int(row, 'key_id'), line: text(row, 'line') };
}

/** putCheckpoint's rule: whether `checkpoint` is stored after `latest`. */
export function publishes(latest: LogCheckpointRecord | null, checkpoint: LogCheckpointRecord, minIntervalMs: number): boolean {
  return latest === null || (checkpoint.size > latest.size && checkpoint.createdAtMs - latest.createdAtMs >= minIntervalMs);
}

/** "level/index", a node's key in a map. */
export const nodeKey = ({ level, index }: TreeNode): string => `${level}/${index}`;
