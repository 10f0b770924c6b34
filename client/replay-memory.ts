/**
 * What a device remembers of the messages it has shown, per conversation, across reloads (in the
 * key store): which message sid and index each signed messageId first appeared at, and the newest
 * signed sentAt shown for each message sid. It decides replays (the same messageId under another
 * message: the one at the lower index is the original) and rollbacks (an edited message going
 * back to an older version).
 *
 * The memory is bounded (REPLAY_WINDOW_MESSAGES per conversation, oldest forgotten first). Older
 * messages are still protected by the sentAt check (MAX_SENT_AT_SKEW_MS): a copy of a message
 * re-posted later carries the transport's new timestamp, far from its signed sentAt.
 */
import { ErrorCode } from '../shared/errors.js';
import { REPLAY_WINDOW_MESSAGES } from '../shared/limits.js';
import type { KeyStore } from './key-store.js';

/** One conversation's memory, as persisted. */
interface ConversationMemory {
  /** messageId → [message sid, index] where it first appeared (lowest index wins). */
  ids: Record<string, [string, number]>;
  /** message sid → the newest signed sentAt shown for it (edits must move forward). */
  versions: Record<string, number>;
}

export interface Sighting {
  messageId: string;
  messageSid: string;
  index: number;
  /** The signed sentAt, unix ms. */
  sentAt: number;
}

export class ReplayMemory {
  private readonly loaded = new Map<string, Promise<ConversationMemory>>();
  /** The last write per conversation, and the conversations with a write queued behind it: a burst of messages costs one write. */
  private readonly saving = new Map<string, Promise<void>>();
  private readonly queued = new Set<string>();

  constructor(
    private readonly keyStore: KeyStore,
    /** The local identity: memory is kept per local user. */
    private readonly me: string,
  ) {}

  /**
   * Records a verified message and says whether it may be shown: null, or ENVELOPE_REPLAY (its
   * messageId appeared first at a lower index, under another sid) or ENVELOPE_ROLLBACK (an older
   * version of a message already shown newer). Called in delivery order.
   */
  async admit(conversationSid: string, sighting: Sighting): Promise<typeof ErrorCode.ENVELOPE_REPLAY | typeof ErrorCode.ENVELOPE_ROLLBACK | null> {
    const memory = await this.memory(conversationSid);
    const { messageId, messageSid, index, sentAt } = sighting;
    const first = memory.ids[messageId];
    if (first !== undefined && first[0] !== messageSid && first[1] <= index) return ErrorCode.ENVELOPE_REPLAY;
    const newest = memory.versions[messageSid];
    if (newest !== undefined && sentAt < newest) return ErrorCode.ENVELOPE_ROLLBACK;
    if (first === undefined || first[0] !== messageSid) {
      delete memory.ids[messageId]; // re-inserted at the end: the newest entries are kept longest
      memory.ids[messageId] = [messageSid, index];
    }
    delete memory.versions[messageSid];
    memory.versions[messageSid] = sentAt;
    forgetOldest(memory.ids);
    forgetOldest(memory.versions);
    this.save(conversationSid, memory);
    return null;
  }

  /** Resolves once every recorded sighting is in the key store. */
  async flushed(): Promise<void> {
    await Promise.all(this.saving.values());
  }

  private key(conversationSid: string): string {
    return `seen-messages:${this.me}:${conversationSid}`;
  }

  private memory(conversationSid: string): Promise<ConversationMemory> {
    let memory = this.loaded.get(conversationSid);
    if (!memory) {
      memory = this.keyStore.getState(this.key(conversationSid)).then((text) => (text ? (JSON.parse(text) as ConversationMemory) : { ids: {}, versions: {} }));
      this.loaded.set(conversationSid, memory);
      memory.catch(() => this.loaded.delete(conversationSid)); // a failed read is tried again next time
    }
    return memory;
  }

  private save(conversationSid: string, memory: ConversationMemory): void {
    if (this.queued.has(conversationSid)) return; // the queued write will take this change too
    this.queued.add(conversationSid);
    const write = (this.saving.get(conversationSid) ?? Promise.resolve())
      .then(() => {
        this.queued.delete(conversationSid);
        return this.keyStore.setState(this.key(conversationSid), JSON.stringify(memory));
      })
      .catch(() => undefined); // the memory stays in this session; the next sighting writes it again
    this.saving.set(conversationSid, write);
    void write.then(() => {
      if (this.saving.get(conversationSid) === write) this.saving.delete(conversationSid);
    });
  }
}

function forgetOldest(entries: Record<string, unknown>): void {
  const keys = Object.keys(entries);
  for (let i = 0; i < keys.length - REPLAY_WINDOW_MESSAGES; i++) delete entries[keys[i]!];
}
