/**
 * The card transparency log in the service (docs/PROTOCOL.md 17.6): publishes checkpoints signed
 * with the LogKey when the log grew, at most every LOG_CHECKPOINT_INTERVAL_MS, hands each new one
 * to the witnesses (when configured) before storing it, keeps their cosignatures with it, and
 * makes proofs from the stored subtrees. The events themselves are appended by the store with
 * each card change.
 *
 * Several instances on one database publish into one log: the tree's sizes and roots are read
 * from the database, a checkpoint is stored once per size (the first writer's; Ed25519 is
 * deterministic, so any instance signs the same bytes), and every instance serves the stored one.
 */
import type { FastifyBaseLogger } from 'fastify';
import { E2EEError, ErrorCode } from '../shared/errors.js';
import { openCheckpoint, parseCheckpoint, signCheckpoint } from '../shared/log-checkpoint.js';
import { consistencyPath, EMPTY_ROOT, inclusionPath, rangeHash, rangeNodes, type LeafRange, type NodeReader } from '../shared/merkle.js';
import { parseNote } from '../shared/signed-note.js';
import { ed25519NoteVerifier } from '../shared/signed-note-keys.js';
import type { LogConfig } from './config-log.js';
import { nodeKey } from './store/log.js';
import type { LogCheckpointRecord, LogEventRecord, Store } from './store/types.js';

/** What the witnesses get for a new checkpoint (the c2sp.org/tlog-witness add-checkpoint inputs). */
export interface WitnessSubmission {
  /** The checkpoint note, signed by the LogKey. */
  note: string;
  size: number;
  /** The size of the checkpoint this log published before it (0 at first). */
  previousSize: number;
  /** The consistency proof from previousSize to size (empty when previousSize is 0). */
  consistency: Uint8Array[];
}

/** Submits a checkpoint to the witnesses; resolves with their cosignature lines ("— name base64\n"). */
export type SubmitToWitnesses = (submission: WitnessSubmission) => Promise<string[]>;

/** A checkpoint as served: the stored note with the cosignatures held for its size appended. */
export interface ServedCheckpoint {
  size: number;
  rootHash: Uint8Array;
  note: string;
}

/** An event with its inclusion proof in the tree of `size`. */
export interface ProvenEvent {
  event: LogEventRecord;
  proof: Uint8Array[];
}

export interface TransparencyLogOptions {
  logger: FastifyBaseLogger;
  witness?: SubmitToWitnesses | undefined;
}

const invalidSize = (message: string) => new E2EEError(ErrorCode.BAD_REQUEST, message);

/** Inclusion proofs kept in memory: about 10 MB at 20 hashes each. */
const PROOF_CACHE_ENTRIES = 16_384;

export class TransparencyLog {
  private timer: NodeJS.Timeout | null = null;
  private publishing: Promise<LogCheckpointRecord> | null = null;
  /** A checkpoint being stored with its cosignatures: latest() waits for both. */
  private storing: Promise<LogCheckpointRecord> | null = null;
  /** Recent inclusion proofs by `index/size`, in insertion order. */
  private readonly proofs = new Map<string, Uint8Array[]>();

  constructor(
    private readonly store: Store,
    readonly config: LogConfig,
    private readonly options: TransparencyLogOptions,
  ) {}

  /**
   * Checks that the stored checkpoints are this LogKey's and origin's (instances configured
   * differently would sign one log under two keys), publishes the first checkpoint (size 0 on a
   * new log) and then every interval. CONFIG_INVALID when the stored ones are another origin's
   * (naming the LOG_ORIGIN to set: without it the origin follows PUBLIC_URL) or another key's.
   */
  async start(): Promise<void> {
    const latest = await this.store.latestCheckpoint();
    if (latest) this.checkStored(latest.note);
    await this.publish();
    this.timer = setInterval(() => {
      this.publish().catch((err: unknown) => this.options.logger.error({ err }, 'log checkpoint not published'));
    }, this.config.checkpointIntervalMs);
    this.timer.unref();
  }

  private checkStored(note: string): void {
    const { origin, key } = this.config;
    const stored = parseCheckpoint(parseNote(note).text).origin;
    let problem = `LOG_ORIGIN is "${origin}" but this store's log is "${stored}", the origin its clients pin: set LOG_ORIGIN=${stored}`;
    if (stored === origin) {
      try {
        openCheckpoint(note, { origin, log: ed25519NoteVerifier(origin, key.publicKey) });
        return;
      } catch (err) {
        problem = `LOG_KEY must be the key that signed this store's checkpoints (${(err as Error).message})`;
      }
    }
    throw new E2EEError(ErrorCode.CONFIG_INVALID, problem, { details: { problems: [problem] } });
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Publishes a checkpoint of the log as it is now, when it grew (one at a time per process); resolves with the latest stored. */
  publish(): Promise<LogCheckpointRecord> {
    this.publishing ??= this.publishNow().finally(() => {
      this.publishing = null;
    });
    return this.publishing;
  }

  private async publishNow(): Promise<LogCheckpointRecord> {
    const [size, latest] = [await this.store.logSize(), await this.store.latestCheckpoint()];
    if (latest && latest.size >= size) return latest;
    const rootHash = size === 0 ? EMPTY_ROOT : rangeHash({ start: 0, end: size }, await this.nodes([{ start: 0, end: size }]));
    const note = signCheckpoint({ origin: this.config.origin, size, rootHash, extensions: [] }, this.config.key);
    // The witnesses cosign before the checkpoint is stored: a client requiring them never sees it bare.
    const lines = await this.witness(note, size, latest?.size ?? 0);
    this.storing = this.keep({ size, rootHash, note, createdAtMs: Date.now() }, lines).finally(() => {
      this.storing = null;
    });
    return this.storing;
  }

  /** Stores the checkpoint and, when it is the one stored, the witnesses' cosignature lines with it. */
  private async keep(checkpoint: LogCheckpointRecord, lines: string[] | null): Promise<LogCheckpointRecord> {
    const stored = await this.store.putCheckpoint(checkpoint, this.config.checkpointIntervalMs);
    if (lines && stored.size === checkpoint.size && stored.note === checkpoint.note) {
      const added = lines.length === 0 ? 0 : await this.addCosignatures(checkpoint.note + lines.join(''));
      this.options.logger.info({ size: checkpoint.size, cosignatures: added }, 'log checkpoint cosigned');
    }
    return stored;
  }

  /** The witnesses' cosignature lines for a new checkpoint (null without witnesses); a witness down does not stop the log. */
  private async witness(note: string, size: number, previousSize: number): Promise<string[] | null> {
    const { witness, logger } = this.options;
    if (!witness || size === 0) return null;
    try {
      const consistency = previousSize === 0 ? [] : await this.consistencyProof(previousSize, size);
      return await witness({ note, size, previousSize, consistency });
    } catch (err) {
      logger.warn({ err, size }, 'log checkpoint not cosigned');
      return [];
    }
  }

  /**
   * Keeps the signature lines of `note` other than the LogKey's as cosignatures of the stored
   * checkpoint with the same text (checking the witnesses' keys is the caller's). Returns how many.
   */
  async addCosignatures(note: string): Promise<number> {
    const { text, signatures } = parseNote(note);
    const size = Number(text.split('\n')[1]);
    const stored = Number.isSafeInteger(size) ? await this.store.logCheckpoint(size) : null;
    if (!stored || parseNote(stored.note).text !== text) throw new E2EEError(ErrorCode.NOT_FOUND, 'no checkpoint of this log has that text');
    const lines = note.slice(text.length + 1).split(/(?<=\n)/);
    let added = 0;
    for (const [i, s] of signatures.entries()) {
      if (s.name === this.config.key.name && s.keyId === this.config.key.keyId) continue;
      if (await this.store.putLogCosignature(size, { name: s.name, keyId: s.keyId, line: lines[i]! })) added += 1;
    }
    return added;
  }

  /** The latest checkpoint with the cosignatures held for it. Publishes first when none is stored yet. */
  async latest(): Promise<ServedCheckpoint> {
    if (this.storing) await this.storing.catch(() => undefined);
    const latest = (await this.store.latestCheckpoint()) ?? (await this.publish());
    const cosignatures = await this.store.logCosignatures(latest.size);
    return { size: latest.size, rootHash: latest.rootHash, note: latest.note + cosignatures.map((c) => c.line).join('') };
  }

  /** `size` when given (it must not pass the latest checkpoint's), else the latest checkpoint's. */
  async treeSize(size: number | undefined): Promise<number> {
    const latest = (await this.store.latestCheckpoint())?.size ?? 0;
    if (size === undefined) return latest;
    if (size > latest) throw invalidSize(`size ${size} is past the latest checkpoint's (${latest})`);
    return size;
  }

  /** A reader of the stored nodes the given ranges need, fetched in one call. */
  private async nodes(ranges: readonly LeafRange[]): Promise<NodeReader> {
    const nodes = [...new Map(ranges.flatMap(rangeNodes).map((n) => [nodeKey(n), n])).values()];
    const hashes = await this.store.logNodes(nodes);
    const found = new Map(nodes.map((n, i) => [nodeKey(n), hashes[i]!]));
    return (node) => found.get(nodeKey(node))!;
  }

  /**
   * Inclusion proofs of several leaves in the tree of `size`, from one read of the nodes. A proof
   * never changes for its index and size, and lookups ask for the same cards until the next
   * checkpoint, so recent ones are kept (PROOF_CACHE_ENTRIES, oldest dropped first).
   */
  async inclusionProofs(indexes: readonly number[], size: number): Promise<Uint8Array[][]> {
    const key = (index: number) => `${index}/${size}`;
    const missing = [...new Set(indexes.filter((index) => !this.proofs.has(key(index))))];
    if (missing.length > 0) {
      const paths = missing.map((index) => inclusionPath(index, size));
      const read = await this.nodes(paths.flat());
      missing.forEach((index, i) => this.proofs.set(key(index), paths[i]!.map((range) => rangeHash(range, read))));
      for (const old of this.proofs.keys()) {
        if (this.proofs.size <= PROOF_CACHE_ENTRIES) break;
        this.proofs.delete(old);
      }
    }
    return indexes.map((index) => this.proofs.get(key(index))!);
  }

  /** The consistency proof from the tree of `from` leaves to the tree of `to` (1 <= from <= to). */
  async consistencyProof(from: number, to: number): Promise<Uint8Array[]> {
    if (from < 1 || from > to) throw invalidSize(`a consistency proof goes from a size of at least 1 to one as large (from ${from} to ${to})`);
    const path = consistencyPath(from, to);
    const read = await this.nodes(path);
    return path.map((range) => rangeHash(range, read));
  }

  /** The events with their proofs in the tree of `size` (events at or past it are left out). */
  async prove(events: readonly LogEventRecord[], size: number): Promise<ProvenEvent[]> {
    const included = events.filter((e) => e.index < size);
    const proofs = await this.inclusionProofs(included.map((e) => e.index), size);
    return included.map((event, i) => ({ event, proof: proofs[i]! }));
  }
}
