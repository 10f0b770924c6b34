/**
 * The local relay's media service, standing in for Twilio's Media Content Service: who may upload
 * and download, the download URLs, and the sweep of uploads never attached. The HTTP side is
 * media-routes.ts; the bytes are the store's (server/store/media.*.ts). The relay stores what it
 * is given: with the wrapper in front, encrypted blobs named `<fileId>.bin`.
 *
 * Download URLs are capabilities that expire: the path of the blob, its expiry and an HMAC of both
 * under a key derived from the AppKey (any instance verifies another's), so no relay token ever
 * sits in a URL (where access logs and browser histories would keep it).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { ApiPath } from '../../shared/api.js';
import { E2EEError, ErrorCode } from '../../shared/errors.js';
import { RELAY_LIMITS, type RelayMediaData } from '../../shared/relay-protocol.js';
import type { RelayMedia, RelayMessageMedia, Store } from '../store/types.js';

/** How often the sweep of unattached uploads runs. */
const SWEEP_INTERVAL_MS = 10 * 60_000;

export const toMediaData = (m: RelayMessageMedia): RelayMediaData => ({
  sid: m.sid,
  category: 'media',
  filename: m.filename,
  contentType: m.contentType,
  size: m.size,
});

export class RelayMediaService {
  /** Uploads in progress per identity, in this process. */
  private readonly uploading = new Map<string, number>();
  private sweepTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: Store,
    private readonly urlSecret: Uint8Array,
    /** The plugin's prefix: download paths are below it. */
    private readonly prefix: string,
    private readonly onSweepError: (err: Error) => void,
  ) {}

  /** Sweeps now and every SWEEP_INTERVAL_MS until stop(). */
  start(): void {
    const sweep = () => void this.sweep().catch(this.onSweepError);
    sweep();
    this.sweepTimer = setInterval(sweep, SWEEP_INTERVAL_MS);
    this.sweepTimer.unref();
  }

  stop(): void {
    clearInterval(this.sweepTimer);
  }

  /** Deletes uploads never attached within RELAY_LIMITS.unattachedMediaMs; returns how many. */
  sweep(nowMs = Date.now()): Promise<number> {
    return this.store.sweepMedia(nowMs - RELAY_LIMITS.unattachedMediaMs);
  }

  /**
   * Checks an upload may start: the caller is a participant, has an upload slot and room for
   * `declaredBytes` more unattached bytes. Returns the release of the slot.
   */
  async beginUpload(identity: string, conversationSid: string, declaredBytes: number): Promise<() => void> {
    const conversation = await this.store.getConversation(conversationSid);
    if (!conversation || conversation.sid !== conversationSid) throw new E2EEError(ErrorCode.NOT_FOUND, `conversation ${conversationSid} not found`);
    if (!(await this.store.isParticipant(conversationSid, identity))) throw new E2EEError(ErrorCode.FORBIDDEN, 'not a participant of this conversation');
    const inFlight = this.uploading.get(identity) ?? 0;
    if (inFlight >= RELAY_LIMITS.uploadsInFlight) {
      throw new E2EEError(ErrorCode.RATE_LIMITED, `at most ${RELAY_LIMITS.uploadsInFlight} uploads at a time`);
    }
    if ((await this.store.unattachedMediaBytes(identity)) + declaredBytes > RELAY_LIMITS.unattachedBytes) {
      throw new E2EEError(ErrorCode.RATE_LIMITED, `over ${RELAY_LIMITS.unattachedBytes} bytes uploaded and not sent: send them, or wait until they expire`);
    }
    this.uploading.set(identity, inFlight + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const n = (this.uploading.get(identity) ?? 1) - 1;
      if (n === 0) this.uploading.delete(identity);
      else this.uploading.set(identity, n);
    };
  }

  /** getMediaUrls: signed download paths for attached media of conversations the caller is in now. */
  async urls(caller: string, mediaSids: unknown, nowMs = Date.now()): Promise<Record<string, string>> {
    if (!Array.isArray(mediaSids) || mediaSids.length > RELAY_LIMITS.mediaUrlsPerRequest || !mediaSids.every((s) => typeof s === 'string')) {
      throw new E2EEError(ErrorCode.BAD_REQUEST, `"mediaSids" must be an array of at most ${RELAY_LIMITS.mediaUrlsPerRequest} strings`);
    }
    const urls: Record<string, string> = {};
    for (const sid of new Set(mediaSids as string[])) {
      const media = await this.attached(sid);
      // A stranger learns nothing: an unknown sid and someone else's answer alike.
      if (!media || !(await this.store.isParticipant(media.conversationSid, caller))) throw new E2EEError(ErrorCode.NOT_FOUND, `media ${sid.slice(0, 64)} not found`);
      urls[sid] = this.signedPath(sid, nowMs + RELAY_LIMITS.mediaUrlTtlMs);
    }
    return urls;
  }

  /** The media a download URL names, once its signature and expiry check out; NOT_FOUND or FORBIDDEN otherwise. */
  async download(sid: string, expires: unknown, signature: unknown, nowMs = Date.now()): Promise<RelayMedia> {
    const expiresMs = typeof expires === 'string' && /^\d{1,15}$/.test(expires) ? Number(expires) : NaN;
    const given = typeof signature === 'string' ? Buffer.from(signature, 'base64url') : Buffer.alloc(0);
    const expected = this.mac(sid, expiresMs);
    if (!Number.isSafeInteger(expiresMs) || given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new E2EEError(ErrorCode.FORBIDDEN, 'the download URL is not valid: ask for a new one');
    }
    if (nowMs >= expiresMs) throw new E2EEError(ErrorCode.FORBIDDEN, 'the download URL has expired: ask for a new one');
    const media = await this.attached(sid);
    if (!media) throw new E2EEError(ErrorCode.NOT_FOUND, 'the media is gone (its message was removed)');
    return media;
  }

  /** A stored blob attached to a message; null otherwise (unattached uploads are never served). */
  private async attached(sid: string): Promise<RelayMedia | null> {
    const media = await this.store.getMedia(sid);
    return media?.messageSid ? media : null;
  }

  private signedPath(sid: string, expiresMs: number): string {
    return `${this.prefix}${ApiPath.relayMediaContent(sid)}?expires=${expiresMs}&signature=${this.mac(sid, expiresMs).toString('base64url')}`;
  }

  private mac(sid: string, expiresMs: number): Buffer {
    return createHmac('sha256', this.urlSecret).update(`${sid}\n${expiresMs}`).digest();
  }
}
