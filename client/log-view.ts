/**
 * The client's view of the card transparency log (docs/PROTOCOL.md 17.6): the newest checkpoint
 * it verified (signed by the pinned LogKey, cosigned by the required witnesses), kept in the key
 * store, and moved forward only along a verified consistency proof. A checkpoint that does not
 * extend the kept one is a fork; one older than a checkpoint already verified before it was asked
 * for is a rollback; either raises a directory alert and is refused.
 */
import { equalBytes, fromB64u, toB64u } from '../shared/encoding.js';
import { E2EEError, ErrorCode, isE2EEError } from '../shared/errors.js';
import type { CheckpointTrust } from '../shared/log-checkpoint.js';
import { EMPTY_ROOT, leafHash, verifyConsistency, verifyInclusion } from '../shared/merkle.js';
import type { ApiClient } from './api-client.js';
import type { DirectoryAlerts } from './directory-alert.js';
import type { LogOptions } from './e2ee-client-options.js';
import type { KeyStore } from './key-store.js';

/** A tree head the client verified. */
export interface LogHead {
  size: number;
  root: Uint8Array;
}

/** Where a gossiped checkpoint came from, for the alert. */
export interface GossipContext {
  identity?: string;
  conversationSid?: string;
  messageSid?: string;
}

/** What the key store keeps: the LogKey (pinned or first seen) and the newest verified checkpoint. */
interface KeptLog {
  key: string;
  size: number;
  root: string;
}

/** Recently verified heads kept in memory, so proofs made at a slightly older size still check. */
const RECENT_HEADS = 32;

export class LogView {
  private kept: Promise<KeptLog | null> | null = null;
  private readonly heads = new Map<number, Uint8Array>();
  /** Checkpoint notes adopted, so an answer carrying the same note costs no signature check. */
  private lastNote: { note: string; head: LogHead } | null = null;
  /** Adoptions run one at a time, so the kept checkpoint only moves along checked proofs. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly api: ApiClient,
    private readonly keyStore: KeyStore,
    me: string,
    private readonly options: LogOptions | undefined,
    private readonly alerts: DirectoryAlerts,
    private readonly stateKey = `log:${me}`,
  ) {}

  private load(): Promise<KeptLog | null> {
    this.kept ??= this.keyStore.getState(this.stateKey).then((text) => {
      const kept = text === null ? null : (JSON.parse(text) as KeptLog);
      if (kept) this.remember({ size: kept.size, root: fromB64u(kept.root) });
      return kept;
    });
    return this.kept;
  }

  private remember(head: LogHead): void {
    this.heads.set(head.size, head.root);
    if (this.heads.size > RECENT_HEADS) this.heads.delete(Math.min(...this.heads.keys()));
  }

  /** The newest checkpoint verified (persisted), or undefined before the first. */
  async latest(): Promise<LogHead | undefined> {
    const kept = await this.load();
    return kept ? { size: kept.size, root: fromB64u(kept.root) } : undefined;
  }

  private trusted: { trust: CheckpointTrust; key: string; required: number; open: OpenCheckpoint } | null = null;

  /** The pinned trust: the option's keys, or the key first served (kept); with the checkpoint parser, loaded on demand. */
  private async trust(): Promise<{ trust: CheckpointTrust; key: string; required: number; open: OpenCheckpoint }> {
    if (this.trusted) return this.trusted;
    const key = this.options?.key ?? (await this.load())?.key ?? (await this.api.logKey()).verifierKey;
    const { noteVerifierFromKey, cosignatureVerifierFromKey, openCheckpoint } = await import('./on-demand.js');
    const log = noteVerifierFromKey(key);
    const witnesses = (this.options?.witnesses?.keys ?? []).map((k) => cosignatureVerifierFromKey(k));
    this.trusted = { trust: { origin: log.name, log, witnesses }, key, required: this.options?.witnesses?.required ?? 0, open: openCheckpoint };
    return this.trusted;
  }

  /** Fetches the latest checkpoint and adopts it (see adopt). */
  async refresh(): Promise<LogHead> {
    const askedAt = (await this.latest())?.size ?? 0;
    return this.adopt(await this.api.logCheckpoint(), askedAt);
  }

  /**
   * Verifies a checkpoint the service served (its note) and returns its head. A newer one is
   * adopted once the consistency proof from the kept one verifies; an equal size must have the
   * same root; an older one is accepted when it is a prefix of the kept one and the kept one was
   * verified after the request was sent (`askedAt`: the kept size then), else it is a rollback.
   * Throws DIRECTORY_UNTRUSTED (after raising the alert) for a fork or a rollback.
   */
  adopt(note: string, askedAt: number): Promise<LogHead> {
    if (this.lastNote?.note === note) return Promise.resolve(this.lastNote.head);
    const next = this.queue.then(() => this.adoptNow(note, askedAt));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async adoptNow(note: string, askedAt: number): Promise<LogHead> {
    const { trust, key, required, open } = await this.trust();
    const { checkpoint, cosignatures } = open(note, trust);
    const head = { size: checkpoint.size, root: checkpoint.rootHash };
    if (new Set(cosignatures.map((c) => c.name)).size < required) {
      await this.alerts.raise({
        kind: 'witness-missing',
        message: `The card directory's checkpoint ${head.size} lacks the cosignatures of ${required} of the required witnesses: it is not used. Contact your administrator if this lasts.`,
      });
      throw new E2EEError(ErrorCode.DIRECTORY_UNTRUSTED, `the checkpoint of size ${head.size} is not cosigned by ${required} required witness(es)`);
    }
    const kept = await this.latest();
    if (kept) await this.checkAgainst(kept, head, askedAt);
    if (!kept || head.size > kept.size) await this.keep({ key, size: head.size, root: toB64u(head.root) });
    this.remember(head);
    this.lastNote = { note, head };
    return head;
  }

  private async keep(log: KeptLog): Promise<void> {
    await this.keyStore.setState(this.stateKey, JSON.stringify(log));
    this.kept = Promise.resolve(log);
  }

  private async checkAgainst(kept: LogHead, served: LogHead, askedAt: number): Promise<void> {
    if (served.size < askedAt) {
      await this.untrusted('log-rollback', `The card directory served an older state of its log (size ${served.size}) than it had already shown this device (${askedAt}). Do not trust new devices until your administrator explains it.`, served);
    }
    const [older, newer] = served.size <= kept.size ? [served, kept] : [kept, served];
    try {
      await this.checkConsistent(older, newer);
    } catch (err) {
      // A service that refuses to prove consistency with a checkpoint it signed and served cannot prove it either.
      if (!isE2EEError(err, ErrorCode.LOG_CONSISTENCY_INVALID) && !isE2EEError(err, ErrorCode.BAD_REQUEST)) throw err;
      await this.untrusted('log-fork', `The card directory served a log (size ${served.size}) that does not extend the one this device verified (size ${kept.size}): it shows different people different devices. Contact your administrator.`, served);
    }
  }

  /** Verifies that `newer` extends `older` (asking the service for the proof when it is needed). */
  private async checkConsistent(older: LogHead, newer: LogHead): Promise<void> {
    const fail = (message: string) => new E2EEError(ErrorCode.LOG_CONSISTENCY_INVALID, message);
    if (older.size === newer.size) {
      if (!equalBytes(older.root, newer.root)) throw fail(`two roots for the tree of ${older.size}`);
      return;
    }
    if (older.size === 0) {
      if (!equalBytes(older.root, EMPTY_ROOT)) throw fail('an empty tree whose root is not the empty root');
      return;
    }
    // Every head held was checked against the kept one when it came: two held heads are consistent.
    if (this.holds(older) && this.holds(newer)) return;
    const { proof } = await this.api.logConsistency(older.size, newer.size);
    verifyConsistency({ size1: older.size, size2: newer.size, root1: older.root, root2: newer.root, proof: decodeHashes(proof, ErrorCode.LOG_CONSISTENCY_INVALID) });
  }

  private holds(head: LogHead): boolean {
    const root = this.heads.get(head.size);
    return root !== undefined && equalBytes(root, head.root);
  }

  private async untrusted(kind: 'log-fork' | 'log-rollback', message: string, served: LogHead, context: GossipContext = {}): Promise<never> {
    await this.alerts.raise({ kind, message, ...context, detail: `${served.size}:${toB64u(served.root)}` });
    throw new E2EEError(ErrorCode.DIRECTORY_UNTRUSTED, message);
  }

  /** The verified root of the tree of `size`, when this view holds it. */
  rootOf(size: number): Uint8Array | undefined {
    return this.heads.get(size);
  }

  /** Verifies that `leaf` is leaf `index` of a tree this view holds (LOG_INCLUSION_INVALID otherwise). */
  verifyLeaf(leaf: Uint8Array, index: number, size: number, proof: readonly string[]): void {
    const root = this.heads.get(size);
    if (!root) throw new E2EEError(ErrorCode.LOG_INCLUSION_INVALID, `no verified checkpoint of size ${size} to prove leaf ${index} in`);
    verifyInclusion({ index, size, leafHash: leafHash(leaf), proof: decodeHashes(proof, ErrorCode.LOG_INCLUSION_INVALID), root });
  }

  /**
   * A checkpoint a peer claims (gossip): it must be consistent with this view's. Equal sizes need
   * equal roots; otherwise the service's consistency proof between the two is verified (after a
   * refresh when the peer's is newer). A failure raises 'log-fork' with the context and throws
   * DIRECTORY_UNTRUSTED.
   */
  async checkGossip(size: number, root: Uint8Array, context: GossipContext = {}): Promise<void> {
    let mine = await this.latest();
    if (!mine || mine.size < size) mine = await this.refresh();
    const claimed = { size, root };
    const fork = () => this.untrusted('log-fork', `${context.identity ?? 'A contact'} sees a different card directory log than this device (size ${size}): the service shows you different devices. Contact your administrator.`, claimed, context);
    if (mine.size < size) return fork();
    try {
      await this.checkConsistent(claimed, mine);
    } catch (err) {
      if (!isE2EEError(err, ErrorCode.LOG_CONSISTENCY_INVALID)) throw err;
      return fork();
    }
  }

  /** After the app accepted a fork or rollback of the service's log: the next checkpoint served is trusted afresh. */
  async rebaseline(): Promise<void> {
    const { key } = await this.trust(); // the key first trusted stays; only the checkpoint goes
    this.heads.clear();
    this.lastNote = null;
    await this.keep({ key, size: 0, root: toB64u(EMPTY_ROOT) });
  }
}

/** b64u hashes of a proof, each 32 bytes; anything else is the given verification error. */
export function decodeHashes(proof: unknown, code: ErrorCode): Uint8Array[] {
  if (!Array.isArray(proof)) throw new E2EEError(code, 'a proof is a list of hashes');
  try {
    return proof.map((hash) => fromB64u(hash as string));
  } catch (err) {
    throw new E2EEError(code, 'a proof hash is not b64u', { cause: err });
  }
}

type OpenCheckpoint = typeof import('../shared/log-checkpoint.js').openCheckpoint;

/** Fails early on a malformed `log` option (NOTE_KEY_INVALID, INVALID_ARGUMENT). */
export async function checkLogOptions(options: LogOptions): Promise<void> {
  if (typeof options !== 'object' || options === null || typeof options.key !== 'string') {
    throw new E2EEError(ErrorCode.INVALID_ARGUMENT, '"log" expected {key: the LogKey verifier key, witnesses?: {keys, required}}');
  }
  const { noteVerifierFromKey, cosignatureVerifierFromKey } = await import('./on-demand.js');
  noteVerifierFromKey(options.key);
  const witnesses = options.witnesses;
  if (witnesses === undefined) return;
  if (!Array.isArray(witnesses.keys) || !Number.isSafeInteger(witnesses.required) || witnesses.required < 0 || witnesses.required > witnesses.keys.length) {
    throw new E2EEError(ErrorCode.INVALID_ARGUMENT, '"log.witnesses" expected {keys: verifier keys, required: 0..keys.length}');
  }
  witnesses.keys.forEach((key) => cosignatureVerifierFromKey(key));
}
