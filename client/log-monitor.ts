/**
 * Owner monitoring (docs/PROTOCOL.md 17.6): on connect and every `monitorIntervalMs`, a device
 * reads its own identity's new events in the transparency log and checks each against what it
 * knows of its own account: the cards it registered or approved, and the events before its own
 * registration (the account as it found it). A card registered by nobody it knows is a
 * 'rogue-device' alert; a revocation of this device's card it did not ask for is an
 * 'unknown-event'; a revocation it asked for that never reaches the log is a
 * 'suppressed-revocation'; a chain the service's answers break is a 'log-fork'.
 */
import type { DirectoryAlerts } from './directory-alert.js';
import type { KeyStore } from './key-store.js';
import { reportBrokenChain, type IdentityChains } from './log-chains.js';
import type { LogView } from './log-view.js';

/** How often a device reads its own identity's chain by default. */
export const DEFAULT_MONITOR_INTERVAL_MS = 60_000;

/** What this device knows of its own account (kept in the key store). */
interface Known {
  /** Cards this device registered (each of its registrations) or approved. */
  cards: string[];
  /** Revocations this device asked for: card id -> when (unix ms). */
  revoking: Record<string, number>;
  /** Seen this device's own registration in the chain: later events need to be known ones. */
  pastOwnRegistration: boolean;
}

export class OwnerMonitor {
  private timer: ReturnType<typeof setInterval> | null = null;
  private known: Promise<Known> | null = null;
  private running: Promise<void> | null = null;

  constructor(
    private readonly view: LogView,
    private readonly chains: IdentityChains,
    private readonly alerts: DirectoryAlerts,
    private readonly keyStore: KeyStore,
    private readonly me: string,
    /** This device's current card id, once registered. */
    private readonly ownCard: () => string | null,
    readonly intervalMs = DEFAULT_MONITOR_INTERVAL_MS,
    private readonly stateKey = `log-known:${me}`,
  ) {}

  private load(): Promise<Known> {
    this.known ??= this.keyStore.getState(this.stateKey).then((text) => (text ? (JSON.parse(text) as Known) : { cards: [], revoking: {}, pastOwnRegistration: false }));
    return this.known;
  }

  private async update(change: (known: Known) => void): Promise<void> {
    const known = await this.load();
    change(known);
    await this.keyStore.setState(this.stateKey, JSON.stringify(known));
  }

  /** A card this device registers or approves: its registration event is this device's own. */
  noteCard(cardId: string): Promise<void> {
    return this.update((k) => void (k.cards.includes(cardId) || k.cards.push(cardId)));
  }

  /** A revocation this device asks for (before asking): its event is this device's own. */
  noteRevocation(cardId: string): Promise<void> {
    return this.update((k) => void (k.revoking[cardId] ??= Date.now()));
  }

  /** A revocation that failed: its event will not come. */
  forgetRevocation(cardId: string): Promise<void> {
    return this.update((k) => void delete k.revoking[cardId]);
  }

  /** Checks now, then every interval (the timer does not keep a Node process alive). */
  start(): void {
    if (this.timer) return;
    void this.check().catch(() => undefined);
    this.timer = setInterval(() => void this.check().catch(() => undefined), this.intervalMs);
    (this.timer as { unref?: () => void }).unref?.();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** One check of the own chain (concurrent calls share it). Network trouble is thrown and retried next interval. */
  /**
   * The cards of this identity this device counts as its own devices: the ones it registered or
   * approved, and those registered before its first one (the account as it found it), as far as
   * its identity's chain was read. The recipient audit calls any other card of it a rogue device.
   */
  async ownCards(): Promise<Set<string>> {
    const known = new Set((await this.load()).cards);
    const own = new Set(known);
    const current = this.ownCard();
    if (current) own.add(current);
    for (const { cardId } of (await this.chains.get(this.me)).chain.cards) {
      if (known.has(cardId) || cardId === current) break;
      own.add(cardId);
    }
    return own;
  }

  check(): Promise<void> {
    this.running ??= this.checkNow().finally(() => (this.running = null));
    return this.running;
  }

  private async checkNow(): Promise<void> {
    const own = this.ownCard();
    if (!own) return;
    await this.noteCard(own);
    const head = await this.view.refresh();
    let found;
    try {
      found = await this.chains.sync(this.me, head);
    } catch (err) {
      await reportBrokenChain(this.alerts, this.me, err, true);
      throw err;
    }
    const known = await this.load();
    for (const event of found.events) {
      const mine = known.cards.includes(event.cardId);
      if (event.kind === 'registration') {
        if (mine) known.pastOwnRegistration = true;
        else if (known.pastOwnRegistration) await this.rogue(event.cardId);
      } else if (known.revoking[event.cardId] !== undefined) {
        delete known.revoking[event.cardId];
      } else if (event.cardId === own) {
        await this.alerts.raise({
          kind: 'unknown-event',
          identity: this.me,
          cardId: event.cardId,
          message: 'This device was removed from your account from somewhere else. If you did not do it on another of your devices, contact your administrator.',
        });
      }
    }
    await this.checkRevocations(known, found.verified.chain.cards);
    await this.keyStore.setState(this.stateKey, JSON.stringify(known));
  }

  private rogue(cardId: string): Promise<unknown> {
    return this.alerts.raise({
      kind: 'rogue-device',
      identity: this.me,
      cardId,
      message: "A device you don't recognise was added to your account. If you did not add it on another of your devices, revoke it and contact your administrator.",
    });
  }

  /** A revocation asked for more than two intervals ago whose card the log still shows active: the service kept the card. */
  private async checkRevocations(known: Known, cards: ReadonlyArray<{ cardId: string; revokedAt: number | null }>): Promise<void> {
    for (const [cardId, at] of Object.entries(known.revoking)) {
      if (Date.now() - at < 2 * this.intervalMs) continue;
      if (cards.find((c) => c.cardId === cardId)?.revokedAt !== null) continue;
      await this.alerts.raise({
        kind: 'suppressed-revocation',
        identity: this.me,
        cardId,
        message: 'A device you removed from your account is still active in the card directory\'s log: the service did not revoke it. Contact your administrator.',
      });
    }
  }
}
