/**
 * Owner monitoring (docs/PROTOCOL.md 17.8): on connect and every `monitorIntervalMs`, a device
 * reads its own identity's new events in the transparency log (every new event of that chain
 * passes here once, whichever check read it) and checks each against what it knows of its own
 * account: the cards it registered or approved, the events before its own registration (the
 * account as it found it), and the cards a device it trusts vouched for with its device proof
 * (an approval or revocation made on a sibling device, log-authorization.ts). A card registered
 * by none of these is a 'rogue-device' alert; a revocation of one of its identity's cards that no
 * device of it proved is an 'unknown-event'; a revocation it asked for that never reaches the log
 * is a 'suppressed-revocation'; a chain the service's answers break is a 'log-fork'.
 */
import type { DirectoryAlerts } from './directory-alert.js';
import type { KeyStore } from './key-store.js';
import type { IdentityChain } from '../shared/log-event.js';
import { authorizes } from './log-authorization.js';
import { reportBrokenChain, type IdentityChains, type LoggedEvent } from './log-chains.js';
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
  /** Cards registered with the proof of a card trusted here (a sibling's approval): own devices too. */
  vouched?: string[];
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
  ) {
    chains.observe(me, (events, chain) => this.judge(events, chain));
  }

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

  /**
   * The cards of this identity this device counts as its own devices: the ones it registered or
   * approved, those registered before its first one (the account as it found it), as far as its
   * identity's chain was read, and those a trusted device vouched for. The recipient audit calls
   * any other card of it a rogue device.
   */
  async ownCards(): Promise<Set<string>> {
    return this.trusted(await this.load(), (await this.chains.get(this.me)).chain);
  }

  private trusted(known: Known, chain: IdentityChain): Set<string> {
    const mine = new Set(known.cards);
    const current = this.ownCard();
    if (current) mine.add(current);
    const own = new Set([...mine, ...(known.vouched ?? [])]);
    for (const { cardId } of chain.cards) {
      if (mine.has(cardId)) break;
      own.add(cardId);
    }
    return own;
  }

  /** One check of the own chain (concurrent calls share it). Network trouble is thrown and retried next interval. */
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
    await this.checkRevocations(await this.load(), found.verified.chain.cards);
  }

  /** Each new event of the own chain, in order (IdentityChains' observer): what it may alert on. */
  private async judge(events: readonly LoggedEvent[], chain: IdentityChain): Promise<void> {
    const known = await this.load();
    const own = this.ownCard();
    for (const event of events) {
      const mine = known.cards.includes(event.cardId);
      if (event.kind === 'registration') {
        if (mine) known.pastOwnRegistration = true;
        else if (!known.pastOwnRegistration) continue; // the account as this device found it
        else if (await this.vouchedFor(event, known, chain)) (known.vouched ??= []).push(event.cardId);
        else await this.rogue(event.cardId);
      } else if (known.revoking[event.cardId] !== undefined) {
        delete known.revoking[event.cardId];
      } else if (!(await this.vouchedFor(event, known, chain)) && (event.cardId === own || known.pastOwnRegistration)) {
        await this.unknownRevocation(event.cardId, event.cardId === own);
      }
    }
    await this.keyStore.setState(this.stateKey, JSON.stringify(known));
  }

  /** Whether the event carries a device proof by a card this device already trusts as its own identity's. */
  private async vouchedFor(event: LoggedEvent, known: Known, chain: IdentityChain): Promise<boolean> {
    const signer = event.authorizedBy?.cardId;
    if (signer === undefined || !this.trusted(known, chain).has(signer)) return false;
    return authorizes(event.authorizedBy, event, await this.chains.signKeyOf(signer));
  }

  private unknownRevocation(cardId: string, thisDevice: boolean): Promise<unknown> {
    return this.alerts.raise({
      kind: 'unknown-event',
      identity: this.me,
      cardId,
      message: thisDevice
        ? 'This device was removed from your account, and none of your devices asked for it: the card directory did it. Contact your administrator.'
        : 'One of your devices was removed from your account, and none of your devices asked for it: the card directory did it. Contact your administrator.',
    });
  }

  private rogue(cardId: string): Promise<unknown> {
    return this.alerts.raise({
      kind: 'rogue-device',
      identity: this.me,
      cardId,
      message:
        "A device you don't recognise was added to your account, and none of your devices approved it. If you just signed in on a new device yourself (where no approval is asked), it is that one; otherwise revoke it and contact your administrator.",
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
