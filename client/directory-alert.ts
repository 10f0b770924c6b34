/**
 * Directory alerts: findings that the card directory lied (a device of mine I never added, a card
 * outside the transparency log, a log that forked or went back). Each finding is raised once as
 * the E2EE client's `directoryAlert` event and remembered in the key store, so a reload does not
 * raise it again. A fork or a rollback stops sends (DIRECTORY_UNTRUSTED) in the conversations it
 * concerns (all of them when it is the service's own log) until the app accepts the alert.
 */
import { E2EEError, ErrorCode } from '../shared/errors.js';
import type { KeyStore } from './key-store.js';

/**
 * What was found:
 * - 'rogue-device': a card of my own identity that this device did not make or approve;
 * - 'unknown-event': an event in my identity's chain I did not make (this device's card revoked by another);
 * - 'unlogged-card': a card served without a valid inclusion proof in the log (never used);
 * - 'suppressed-revocation': a card served as active that the log says was revoked (never used);
 * - 'log-rollback': the service served an older checkpoint (a shorter log) than one already verified;
 * - 'log-fork': two checkpoints that are not consistent (from the service, or from a peer's gossip);
 * - 'unexpected-recipient': a message sealed for a card of an identity that is not a participant;
 * - 'unattributed-slot': a message slot no known card explains;
 * - 'witness-missing': a checkpoint without the cosignatures of the witnesses the client requires.
 */
export type DirectoryAlertKind =
  | 'rogue-device'
  | 'unknown-event'
  | 'unlogged-card'
  | 'suppressed-revocation'
  | 'log-rollback'
  | 'log-fork'
  | 'unexpected-recipient'
  | 'unattributed-slot'
  | 'witness-missing';

/** Kinds that stop sends until the app accepts the alert. */
export const BLOCKING_ALERT_KINDS: readonly DirectoryAlertKind[] = ['log-fork', 'log-rollback'];

export interface DirectoryAlert {
  /** Names the finding: the same finding has the same id (de-duplication, acceptAlert). */
  id: string;
  kind: DirectoryAlertKind;
  /** The identity the finding concerns (the card's owner, or a message's sender). */
  identity?: string;
  cardId?: string;
  conversationSid?: string;
  messageSid?: string;
  /** What happened and what to do, for people. */
  message: string;
  /** Unix milliseconds when it was first raised. */
  raisedAt: number;
}

/** A finding to raise; `detail` tells apart findings that share kind, identity, card and message (e.g. a checkpoint). */
export type NewDirectoryAlert = Omit<DirectoryAlert, 'id' | 'raisedAt'> & { detail?: string };

interface Remembered {
  alert: DirectoryAlert;
  accepted: boolean;
}

/** Findings kept per local identity; the oldest accepted ones are forgotten past this many. */
const MAX_REMEMBERED = 500;

export class DirectoryAlerts {
  private loaded: Promise<Map<string, Remembered>> | null = null;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly keyStore: KeyStore,
    me: string,
    private readonly emit: (alert: DirectoryAlert) => void,
    private readonly stateKey = `directory-alerts:${me}`,
  ) {}

  private load(): Promise<Map<string, Remembered>> {
    this.loaded ??= this.keyStore.getState(this.stateKey).then((text) => {
      const entries = text === null ? [] : (JSON.parse(text) as Remembered[]);
      return new Map(entries.map((e) => [e.alert.id, e]));
    });
    return this.loaded;
  }

  private save(all: Map<string, Remembered>): Promise<void> {
    const accepted = [...all.values()].filter((e) => e.accepted);
    for (const old of accepted.slice(0, Math.max(0, all.size - MAX_REMEMBERED))) all.delete(old.alert.id);
    const text = JSON.stringify([...all.values()]);
    this.writing = this.writing.then(() => this.keyStore.setState(this.stateKey, text));
    return this.writing;
  }

  /** Raises a finding unless it was raised before (in this session or an earlier one); returns it when new. */
  async raise(finding: NewDirectoryAlert): Promise<DirectoryAlert | null> {
    const { detail, ...fields } = finding;
    const id = [fields.kind, fields.identity, fields.cardId, fields.conversationSid, fields.messageSid, detail].map((p) => p ?? '').join('|');
    const all = await this.load();
    if (all.has(id)) return null;
    const alert: DirectoryAlert = { id, ...fields, raisedAt: Date.now() };
    all.set(id, { alert, accepted: false });
    await this.save(all);
    this.emit(alert);
    return alert;
  }

  /** Findings not accepted yet, oldest first (to show again after a reload). */
  async open(): Promise<DirectoryAlert[]> {
    return [...(await this.load()).values()].filter((e) => !e.accepted).map((e) => e.alert);
  }

  /** The first open blocking finding that concerns `conversationSid` (or every conversation), if any. */
  async blocking(conversationSid?: string): Promise<DirectoryAlert | null> {
    const open = await this.open();
    return open.find((a) => BLOCKING_ALERT_KINDS.includes(a.kind) && (a.conversationSid === undefined || a.conversationSid === conversationSid)) ?? null;
  }

  /** Throws DIRECTORY_UNTRUSTED while a fork or rollback concerning the conversation is not accepted. */
  async checkSend(conversationSid: string): Promise<void> {
    const alert = await this.blocking(conversationSid);
    if (alert) {
      throw new E2EEError(ErrorCode.DIRECTORY_UNTRUSTED, `the card directory cannot be trusted (${alert.kind}): nothing is sent until the app accepts the alert`, {
        details: { alertId: alert.id, kind: alert.kind },
      });
    }
  }

  /** The app decided about a finding: it is not raised again and stops blocking sends. */
  async accept(id: string): Promise<DirectoryAlert> {
    const all = await this.load();
    const entry = all.get(id);
    if (!entry) throw new E2EEError(ErrorCode.INVALID_ARGUMENT, `no directory alert ${id}`);
    entry.accepted = true;
    await this.save(all);
    return entry.alert;
  }
}
