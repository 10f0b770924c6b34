/**
 * rewrap-history (docs/API.md "Rotating the OrgKey"): moves history copies wrapped for earlier
 * OrgKeys (ORG_KEY_PREVIOUS) to the newest (ORG_KEY), in batches, so the earlier keys can be
 * dropped. Each batch is one transaction that changes a copy only while it still holds the
 * orgWrap read (a newer version posted meanwhile is left alone), and a finished copy records the
 * newest key's id: stopping at any point and running again goes on where it stopped, redoing
 * nothing. The server may keep running meanwhile; readers get old and new copies alike.
 */
import { useNodeCrypto } from './crypto-backend.js';
import type { Config } from './config.js';
import { isE2EEError } from '../shared/errors.js';
import { createRewrapper, parseEnvelope } from '../shared/envelope.js';
import type { OrgKey } from '../shared/keys.js';
import { OrgKeyRing } from './org-key-ring.js';
import type { HistoryCursor, HistoryRecord, HistoryStore, OrgWrapChange } from './store/types.js';

/** Copies read, re-wrapped and written per transaction. */
export const DEFAULT_REWRAP_BATCH = 500;

export interface RewrapProgress {
  /** Copies gone through so far (re-wrapped, or left because no configured key opens them). */
  done: number;
  /** Copies not under the newest key when the run started. */
  total: number;
  /** Copies that none of the configured keys opens (left as they are). */
  unopened: number;
}

export interface RewrapHistoryResult extends RewrapProgress {
  /** Copies now under the newest key that were not (written by this run). */
  rewrapped: number;
  /** The newest OrgKey's id, which every finished copy records. */
  orgKeyId: string;
  /** The key ids recorded on the unopened copies ('none' for copies stored without one). */
  unopenedKeyIds: string[];
  /** The run was stopped (its signal) before it went through every copy. */
  stopped: boolean;
}

export interface RewrapHistoryOptions {
  store: HistoryStore;
  /** The newest OrgKey (ORG_KEY): every copy ends up wrapped for it. */
  orgKey: OrgKey;
  /** The earlier OrgKeys (ORG_KEY_PREVIOUS) whose copies move to `orgKey`. */
  previousOrgKeys?: readonly OrgKey[];
  /** Copies per batch (one transaction each); default 500. */
  batchSize?: number;
  /** Told after each batch; awaited before the next one. */
  onProgress?: (progress: RewrapProgress) => void | Promise<void>;
  /** Stops the run between two batches. */
  signal?: AbortSignal;
}

/** Moves every history copy not under `orgKey` to it; see the module comment. */
export async function rewrapHistory(options: RewrapHistoryOptions): Promise<RewrapHistoryResult> {
  const { store, batchSize = DEFAULT_REWRAP_BATCH, onProgress, signal } = options;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
  useNodeCrypto(); // the same bytes as libsodium, 2-3x faster (as the plugin does)
  const ring = new OrgKeyRing(options.orgKey, options.previousOrgKeys);
  const total = await store.countHistoryNotWrappedFor(ring.newestId);
  const progress: RewrapProgress = { done: 0, total, unopened: 0 };
  const unopenedKeyIds = new Set<string>();
  let rewrapped = 0;
  let after: HistoryCursor | null = null;
  for (;;) {
    if (signal?.aborted) return { ...progress, rewrapped, orgKeyId: ring.newestId, unopenedKeyIds: [...unopenedKeyIds], stopped: true };
    const batch = await store.historyNotWrappedFor(ring.newestId, after, batchSize);
    if (batch.length === 0) break;
    const changes: OrgWrapChange[] = [];
    // One ephemeral key per batch: one X25519 for all its rewraps (see createRewrapper).
    const rewrap = createRewrapper(ring.newest.keys.boxPublicKey);
    for (const record of batch) {
      const change = changeFor(record, ring, rewrap);
      if (change) changes.push(change);
      else {
        progress.unopened++;
        unopenedKeyIds.add(record.orgKeyId ?? 'none');
      }
    }
    rewrapped += await store.setOrgWraps(changes);
    const last = batch[batch.length - 1]!;
    after = { conversationSid: last.conversationSid, messageSid: last.messageSid };
    progress.done += batch.length;
    // Copies an instance on an earlier key stored during the run are found too: the total follows.
    progress.total = Math.max(progress.total, progress.done);
    await onProgress?.({ ...progress });
    if (batch.length < batchSize) break;
  }
  return { ...progress, rewrapped, orgKeyId: ring.newestId, unopenedKeyIds: [...unopenedKeyIds], stopped: false };
}

/** The change that puts `record` under the newest key; null when no configured key opens it. */
function changeFor(record: HistoryRecord, ring: OrgKeyRing, rewrap: ReturnType<typeof createRewrapper>): OrgWrapChange | null {
  if (record.orgKeyId !== undefined && !ring.has(record.orgKeyId)) return null;
  let orgWrap: string;
  try {
    const parsed = parseEnvelope(record.envelope);
    const opened = ring.open(record.orgWrap, parsed, record.orgKeyId);
    // A copy stored before key ids were recorded may be under the newest key already: only its id is missing.
    orgWrap = opened.orgKeyId === ring.newestId ? record.orgWrap : rewrap(opened.cek, parsed);
  } catch (err) {
    if (isE2EEError(err)) return null; // no key opens it (or the stored copy is damaged)
    throw err;
  }
  const { conversationSid, messageSid } = record;
  return { conversationSid, messageSid, previousOrgWrap: record.orgWrap, orgWrap, orgKeyId: ring.newestId };
}

/** What the command needs of the configuration. */
export type RewrapConfig = Pick<Config, 'orgKey' | 'previousOrgKeys'>;

/**
 * The `rewrap-history` command on an open store: prints progress lines to `write` and returns the
 * exit code (0 done, 1 copies left that no configured key opens, 2 no ORG_KEY, 130 stopped).
 */
export async function rewrapHistoryCommand(
  config: RewrapConfig,
  store: HistoryStore,
  write: (line: string) => void,
  options: Pick<RewrapHistoryOptions, 'batchSize' | 'signal'> = {},
): Promise<number> {
  if (!config.orgKey) {
    write('rewrap-history: ORG_KEY is not set: there is no OrgKey to re-wrap history for');
    return 2;
  }
  const result = await rewrapHistory({
    store,
    orgKey: config.orgKey,
    previousOrgKeys: config.previousOrgKeys,
    ...options,
    onProgress: ({ done, total }) => write(`rewrap-history: ${done}/${total} copies (${total === 0 ? 100 : Math.floor((done * 100) / total)}%)`),
  });
  const { orgKeyId, rewrapped, total, unopened, unopenedKeyIds } = result;
  if (result.stopped) {
    write(`rewrap-history: stopped after ${result.done}/${total} copies; run it again to go on`);
    return 130;
  }
  if (total === 0) write(`rewrap-history: every copy is already wrapped for ORG_KEY (OrgKey ${orgKeyId})`);
  else write(`rewrap-history: done, ${rewrapped} copies moved to ORG_KEY (OrgKey ${orgKeyId})`);
  if (unopened > 0) {
    write(
      `rewrap-history: ${unopened} copies open with neither ORG_KEY nor ORG_KEY_PREVIOUS (recorded key ids: ${unopenedKeyIds.join(', ')}); ` +
        'they are left as they are: add their OrgKey to ORG_KEY_PREVIOUS and run again',
    );
    return 1;
  }
  return 0;
}
