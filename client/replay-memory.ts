/**
 * What a device remembers of the messages it has shown, per conversation, across reloads (in the
 * key store): which message sid and index each signed messageId first appeared at, and for each
 * message sid the newest version shown (its edit counter and signed sentAt), its original
 * messageId and its author. It decides replays (the same messageId under another message: the one
 * at the lower index is the original), rollbacks (an edited message going back to an older
 * version), edits bound to another message, and edits by someone other than the author.
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
  /**
   * message sid → the newest version shown for it: [edit counter, signed sentAt, original
   * messageId, author]. Versions move forward by (counter, sentAt). A bare number is the sentAt
   * written by earlier releases (counter 0, no original or author known).
   */
  versions: Record<string, Version | number>;
}

type Version = [edit: number, sentAt: number, original: string, author: string];

type Refusal = typeof ErrorCode.ENVELOPE_REPLAY | typeof ErrorCode.ENVELOPE_ROLLBACK | typeof ErrorCode.ENVELOPE_EDIT_MISMATCH | typeof ErrorCode.ENVELOPE_SENDER_NOT_AUTHOR;

export interface Sighting {
  messageId: string;
  messageSid: string;
  index: number;
  /** The signed sentAt, unix ms. */
  sentAt: number;
  /** The messageId of the message's first version (the signed editOf of an edit; else messageId). */
  original: string;
  /** The signed edit counter: 0 for an original and for every version 1 payload. */
  edit: number;
  /** The identity that signed this version. */
  signer: string;
  /** A version 2 payload, whose original and counter are signed (a version 1 payload's are not). */
  bound: boolean;
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
   * messageId appeared first at a lower index, under another sid), ENVELOPE_SENDER_NOT_AUTHOR (a
   * version of a message signed by another identity than the one shown), ENVELOPE_EDIT_MISMATCH
   * (an edit bound to another original) or ENVELOPE_ROLLBACK (an older version of a message
   * already shown newer). Called in delivery order.
   */
  async admit(conversationSid: string, sighting: Sighting): Promise<Refusal | null> {
    const memory = await this.memory(conversationSid);
    const { messageId, messageSid, index, sentAt, original, edit, signer, bound } = sighting;
    const first = memory.ids[messageId];
    if (first !== undefined && first[0] !== messageSid && first[1] <= index) return ErrorCode.ENVELOPE_REPLAY;
    const shown = memory.versions[messageSid];
    const [shownEdit, shownSentAt, shownOriginal, shownAuthor] = typeof shown === 'number' ? [0, shown, '', ''] : (shown ?? [0, 0, '', '']);
    if (shown !== undefined) {
      if (shownAuthor !== '' && shownAuthor !== signer) return ErrorCode.ENVELOPE_SENDER_NOT_AUTHOR;
      if (bound && shownOriginal !== '' && shownOriginal !== original) return ErrorCode.ENVELOPE_EDIT_MISMATCH;
      if (edit < shownEdit || (edit === shownEdit && sentAt < shownSentAt)) return ErrorCode.ENVELOPE_ROLLBACK;
    }
    if (first === undefined || first[0] !== messageSid) {
      delete memory.ids[messageId]; // re-inserted at the end: the newest entries are kept longest
      memory.ids[messageId] = [messageSid, index];
    }
    delete memory.versions[messageSid];
    // A version 1 payload's original is not signed: the record follows it until a bound version comes.
    memory.versions[messageSid] = [edit, sentAt, bound ? shownOriginal || original : original, shownAuthor || signer];
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
