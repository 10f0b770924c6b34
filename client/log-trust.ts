/**
 * The parts of one E2EE client that hold the card directory to its transparency log, put
 * together: the alerts, the log view, the verified chains, the card checks and owner monitoring
 * (docs/PROTOCOL.md 17.6), and the message crypto whose sends a fork or rollback stops.
 */
import { E2EEError, ErrorCode } from '../shared/errors.js';
import type { ApiClient } from './api-client.js';
import { BLOCKING_ALERT_KINDS, DirectoryAlerts, type DirectoryAlert } from './directory-alert.js';
import type { E2EEClientOptions } from './e2ee-client-options.js';
import type { KeyStore } from './key-store.js';
import { CardLog } from './log-cards.js';
import { IdentityChains } from './log-chains.js';
import { DEFAULT_MONITOR_INTERVAL_MS, OwnerMonitor } from './log-monitor.js';
import { LogView } from './log-view.js';
import { MessageCrypto } from './message-crypto.js';

export class DirectoryTrust {
  readonly alerts: DirectoryAlerts;
  readonly view: LogView;
  readonly chains: IdentityChains;
  readonly cards: CardLog;
  readonly monitor: OwnerMonitor;

  constructor(api: ApiClient, keyStore: KeyStore, me: string, options: Pick<E2EEClientOptions, 'log' | 'monitorIntervalMs'>, emit: (alert: DirectoryAlert) => void, ownCard: () => string | null) {
    this.alerts = new DirectoryAlerts(keyStore, me, emit);
    this.view = new LogView(api, keyStore, me, options.log, this.alerts);
    this.chains = new IdentityChains(api, this.view, keyStore, me);
    this.cards = new CardLog(api, this.view, this.chains, this.alerts);
    this.monitor = new OwnerMonitor(this.view, this.chains, this.alerts, keyStore, me, ownCard, options.monitorIntervalMs ?? DEFAULT_MONITOR_INTERVAL_MS);
  }

  /** The identity's chain head (the leaf hash of its newest event) in the newest checkpoint: what version 2 safety numbers commit to. */
  async chainHead(identity: string): Promise<Uint8Array> {
    const { chain } = (await this.chains.sync(identity, await this.view.refresh())).verified;
    if (!chain.head) throw new E2EEError(ErrorCode.NO_CARDS, `${identity} has no event in the card log`);
    return chain.head.hash;
  }

  /**
   * The app decided about an alert. Accepting a fork or rollback of the service's log trusts the
   * next checkpoint served afresh; of an identity's chain, reads that chain again from its start.
   */
  async accept(id: string): Promise<void> {
    const alert = await this.alerts.accept(id);
    if (!BLOCKING_ALERT_KINDS.includes(alert.kind) || alert.conversationSid !== undefined) return;
    if (alert.identity === undefined) await this.view.rebaseline();
    else await this.chains.forget(alert.identity);
  }
}

/** Message crypto whose sends stop while a fork or rollback concerning the conversation is not accepted. */
export class GuardedMessageCrypto extends MessageCrypto {
  constructor(
    private readonly alerts: DirectoryAlerts,
    ...args: ConstructorParameters<typeof MessageCrypto>
  ) {
    super(...args);
  }

  override async seal(...args: Parameters<MessageCrypto['seal']>): ReturnType<MessageCrypto['seal']> {
    await this.alerts.checkSend(args[0].sid);
    return super.seal(...args);
  }
}
