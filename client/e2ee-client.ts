/**
 * E2EEClient: the entry point for apps. It owns this device's keys and card, the card
 * directory, and wraps a conversations client (the real @twilio/conversations Client, or the
 * local relay client) so that app code keeps calling sendMessage and reading message.body.
 */
import type { Client } from '@twilio/conversations';
import type { PendingDevice } from '../shared/api.js';
import { cardIdOf, createCardRequestAsync, parseCardRequest, trustAppKeys, verifyCard, type CardWire, type VerifiedCard } from '../shared/card.js';
import { fromB64u, toHex } from '../shared/encoding.js';
import { E2EEError, ErrorCode, isE2EEError } from '../shared/errors.js';
import type { AsyncDeviceKeys } from '../shared/keys.js';
import { DEFAULT_CARD_CACHE_TTL_MS } from '../shared/limits.js';
import { safetyNumber } from '../shared/safety-number.js';
import { randomBytes, ready } from '../shared/sodium.js';
import { ApiClient, awaitApproval, type DeviceProver } from './api-client.js';
import { CardDirectory } from './card-directory.js';
import type { BaseClient } from './conversations.js';
import type { DirectoryAlert } from './directory-alert.js';
import { Emitter } from './emitter.js';
import { IndexedDbKeyStore } from './indexeddb-key-store.js';
import type { KeyStore, StoredDevice } from './key-store.js';
import { LocalConversationsClient } from './local/relay-client.js';
import { previewMaker } from './attachment-preview.js';
import { Backups } from './backups.js';
import { HistoryOutbox, HistoryRewraps, type BackupFailure } from './history.js';
import { DirectoryTrust, GuardedMessageCrypto } from './log-trust.js';
import { checkOrgPins, OrgKeyTrust, type OrganizationKeyInfo } from './org-key.js';
import { ReplayMemory } from './replay-memory.js';
import { deviceKeysOf, newDeviceKeys } from './webcrypto-device-keys.js';
import { checkOptions, type E2EEClientEventMap, type E2EEClientOptions, type RegisterOptions } from './e2ee-client-options.js';
import { ClientWrapper, type Engine } from './wrapper.js';

export type { E2EEClientEventMap, E2EEClientOptions, RegisterOptions } from './e2ee-client-options.js';
const DEFAULT_APPROVAL_POLL_MS = 2_000;

export class E2EEClient extends Emitter<E2EEClientEventMap> {
  private device: { record: StoredDevice; keys: AsyncDeviceKeys; card: VerifiedCard } | null = null;
  private readonly directory: CardDirectory;
  private readonly orgKeys: OrgKeyTrust;
  private readonly backups: Backups;
  /** The transparency log's checks: alerts, the log view, chains, cards, owner monitoring. */
  readonly trust: DirectoryTrust;
  /** Wrapped clients: a device change is announced in their conversations. */
  private readonly wrappedClients = new Set<ClientWrapper>();
  /** The registration in progress: concurrent register() calls (and wrap()) share it. */
  private registering: Promise<CardWire> | null = null;

  private constructor(
    /** The Twilio identity (the app JWT's `sub`). */
    readonly identity: string,
    private readonly options: E2EEClientOptions,
    readonly api: ApiClient,
    private readonly keyStore: KeyStore,
  ) {
    super();
    this.trust = new DirectoryTrust(api, keyStore, identity, options, (alert) => this.emit('directoryAlert', alert), () => this.device?.card.id ?? null);
    this.directory = new CardDirectory(api, options.appPublicKeys, keyStore, identity, {
      keyChange: (change) => this.emit('keyChange', change),
      cardRejected: (rejected) => this.emit('cardRejected', rejected),
    }, this.trust.cards, options.cardCacheTtlMs ?? DEFAULT_CARD_CACHE_TTL_MS, this.trust.monitor.intervalMs);
    this.orgKeys = new OrgKeyTrust(api, trustAppKeys(options.appPublicKeys), checkOrgPins(options.orgPublicKeys), keyStore, identity, (change) =>
      this.emit('orgKeyChange', change),
    );
    const report = (failure: BackupFailure) => this.emit('backupFailed', failure);
    const outbox = new HistoryOutbox(keyStore, `history-outbox:${identity}`, (entry) => api.postHistory(entry), report);
    this.backups = new Backups(outbox, this.orgKeys, report);
  }

  static async create(options: E2EEClientOptions): Promise<E2EEClient> {
    await ready();
    await checkOptions(options);
    const keyStore = options.keyStore ?? (globalThis.indexedDB ? new IndexedDbKeyStore() : null);
    if (!keyStore) throw new E2EEError(ErrorCode.INVALID_ARGUMENT, 'keyStore is required outside browsers (FileKeyStore or MemoryKeyStore)');
    const api = new ApiClient(options.serverUrl, options.getAuthToken, options.fetch);
    return new E2EEClient(await api.identity(), options, api, keyStore);
  }

  /** This device's verified card, once registered. */
  get card(): VerifiedCard | null {
    return this.device?.card ?? null;
  }

  /**
   * Registers this device: the first call makes its keys and card; later calls (and reloads)
   * reuse them, unless the card was revoked, in which case a new device is made. A further device
   * of an identity may need an existing device's approval: register() then emits
   * `deviceApprovalPending` and resolves once approved, or throws DEVICE_NOT_APPROVED.
   */
  register(options: RegisterOptions = {}): Promise<CardWire> {
    this.registering ??= this.registerDevice(options).finally(() => (this.registering = null));
    return this.registering;
  }

  private async registerDevice(options: RegisterOptions): Promise<CardWire> {
    const trusted = trustAppKeys(this.options.appPublicKeys);
    let record = await this.keyStore.loadDevice(this.identity);
    if (record?.card) {
      const stored = record;
      try {
        const current = await this.api.getCard(record.card.id);
        if (current.revokedAt !== null) record = null;
        else stored.card = current;
      } catch (err) {
        // Offline: keep using the stored card; a 404 means the service forgot it, so register again.
        if (isE2EEError(err, ErrorCode.NOT_FOUND)) stored.card = null;
        else if (!isE2EEError(err, ErrorCode.NETWORK_ERROR)) throw err;
      }
    }
    record ??= await this.newDevice();
    if (!record.card) {
      const pollMs = options.approvalPollMs ?? DEFAULT_APPROVAL_POLL_MS;
      try {
        record.card = await this.registerKeys(record, pollMs);
      } catch (err) {
        // The keys were registered before but the answer was lost (or they are otherwise taken):
        // every card needs fresh keys, so this device starts over with new ones.
        if (!isE2EEError(err, ErrorCode.KEY_IN_USE)) throw err;
        record = await this.newDevice();
        record.card = await this.registerKeys(record, pollMs);
      }
    }
    const keys = deviceKeysOf(record);
    const card = verifyCard(record.card, { trustedAppKeys: trusted, identity: this.identity });
    await this.keyStore.saveDevice(record);
    this.device = { record, keys, card };
    void this.outbox.flush(); // backups left over from an earlier session
    return card.wire;
  }

  private async newDevice(): Promise<StoredDevice> {
    return {
      identity: this.identity,
      deviceId: toHex(randomBytes(12)),
      deviceName: this.options.deviceName ?? '',
      ...(await newDeviceKeys(this.keyStore)),
      card: null,
    };
  }

  /**
   * Saves the keys (first: a card without its keys would be useless), then registers their card,
   * waiting for an existing device's approval when the service asks for one.
   */
  private async registerKeys(record: StoredDevice, approvalPollMs: number): Promise<CardWire> {
    const request = await createCardRequestAsync(deviceKeysOf(record), { identity: this.identity, deviceId: record.deviceId, deviceName: record.deviceName });
    await this.keyStore.saveDevice(record);
    try {
      const registration = await this.api.registerCard(request);
      if ('card' in registration) return registration.card;
      this.emit('deviceApprovalPending', registration.pending);
      return await awaitApproval(this.api, registration.pending, approvalPollMs);
    } catch (err) {
      // The very same card was registered, but its answer was lost: fetch it.
      if (!isE2EEError(err, ErrorCode.CARD_EXISTS)) throw err;
      return this.api.getCard(cardIdOf(fromB64u(request.snapshot)));
    }
  }

  /** This device as the signer of X-E2EE-Device proofs. */
  private prover(): DeviceProver {
    const { keys, card } = this.requireDevice();
    return { cardId: card.id, sign: (message) => keys.sign(message) };
  }

  private requireDevice(): { keys: AsyncDeviceKeys; card: VerifiedCard } {
    if (!this.device) throw new E2EEError(ErrorCode.DEVICE_NOT_REGISTERED, 'call register() before connect() or wrap()');
    return this.device;
  }

  /**
   * Gets a conversations token from the service and connects: the real @twilio/conversations
   * Client in mode "twilio", the local relay in mode "local"; returns it wrapped. Registers this
   * device first if the app did not.
   */
  async connect(): Promise<Client> {
    if (!this.device) await this.register();
    const token = await this.api.twilioToken();
    if (token.mode === 'local') {
      return this.wrap(await LocalConversationsClient.connect({ relayUrl: token.relayUrl, token: token.token, WebSocket: this.options.WebSocket }));
    }
    const { Client } = await import('@twilio/conversations');
    return this.wrap(new Client(token.token));
  }

  /**
   * Wraps a conversations client the app built itself (`new Client(token)`), synchronously: the
   * result is that same client, typed and behaving as the SDK's Client, with every body sealed and
   * opened. If this device is not registered yet, it is registered in the background; sends and
   * deliveries wait for it, and a failure is reported as the client's `initFailed` event.
   * The local relay client is accepted too (typed as the SDK's Client; `instanceof` holds on Twilio only).
   */
  wrap(client: Client | BaseClient): Client {
    const wrapper = new ClientWrapper(client as unknown as BaseClient, (w) => this.engineFor(w));
    e2eeClients.set(wrapper.client, Promise.resolve(this));
    return wrapper.client;
  }

  /** @internal The crypto and hooks of a wrapped client, once this device is registered. */
  async engineFor(wrapper: ClientWrapper): Promise<Engine> {
    if (!this.device) await this.register();
    const { keys, card } = this.requireDevice();
    const crypto = new GuardedMessageCrypto(this.trust.alerts, this.identity, keys, card, this.directory, new ReplayMemory(this.keyStore, this.identity), this.options.clearAttributes);
    const rewraps = new HistoryRewraps(this.api, () => card.id, (parsed) => !crypto.hasSlot(parsed));
    crypto.rewraps = rewraps;
    const { messageChecks } = await import('./on-demand.js');
    crypto.checks = messageChecks(this.trust, this.directory, this.keyStore, this.identity, this.options.cardCacheTtlMs ?? DEFAULT_CARD_CACHE_TTL_MS);
    const mode = this.options.backup ?? 'send';
    this.wrappedClients.add(wrapper);
    this.trust.monitor.start();
    return {
      crypto,
      hooks: {
        refreshToken: async () => (await this.api.twilioToken()).token,
        afterSend: (conversation, sealed, index) => {
          if (mode !== 'off') void this.backups.afterSend(conversation, sealed.binary, sealed.cek, index);
        },
        afterEdit: (conversationSid, message, sealed) => {
          if (mode !== 'off') void this.backups.afterEdit(conversationSid, message, sealed.text, sealed.binary, sealed.cek);
        },
        afterVerifiedReceive: (raw, opened) => {
          if (mode === 'send+receive') void this.backups.backUp(raw.conversation.sid, raw, opened.envelope, opened.cek);
        },
        participantsChanged: (identity, joined) => {
          this.directory.invalidate(identity ?? undefined);
          crypto.checks?.audit.invalidate();
          if (joined && identity) void crypto.checks?.audit.noteMember(joined, identity);
        },
        prefetchRewraps: (conversationSid, messages) => rewraps.prefetch(conversationSid, messages),
        afterRemove: (conversationSid, messageSid) => {
          // The service deletes it too (relay, Twilio's onMessageRemoved webhook): a failure here loses nothing.
          if (mode !== 'off') void this.api.deleteHistory(conversationSid, messageSid).catch(() => undefined);
        },
        gap: (gap) => this.emit('messageGap', gap),
        tokenUpdated: () => this.emit('tokenUpdated'),
        tokenRefreshFailed: (error) => this.emit('tokenRefreshFailed', error),
        shutdown: (w) => {
          this.wrappedClients.delete(w);
          if (this.wrappedClients.size === 0) this.trust.monitor.stop();
        },
        attachmentPreview: previewMaker(this.options.attachmentPreview),
        attachmentProgress: (progress) => this.emit('attachmentProgress', progress),
      },
    };
  }

  /**
   * Tells the contacts in every conversation of the wrapped clients that this identity's devices
   * changed (a participant attribute update), so their next message is sealed for the new set
   * at once instead of after their card cache expires. Best effort: a conversation that cannot
   * be updated is skipped.
   */
  private async announceDeviceChange(): Promise<void> {
    await Promise.all([...this.wrappedClients].map((wrapper) => wrapper.announceDeviceChange(this.identity).catch(() => undefined)));
  }

  /**
   * The organization key (OrgCard) backups are wrapped for, with its fingerprint and whether it
   * is pinned, trusted on first use, or changed; null when the service runs without history.
   */
  /** Backups waiting for the history service; persisted in the key store. */
  get outbox(): HistoryOutbox {
    return this.backups.outbox;
  }

  /** Backups not yet acknowledged by the history service (being prepared, held for a changed OrgCard, or in the outbox). */
  pendingBackups(): Promise<number> {
    return this.backups.pending();
  }

  async organizationKey(): Promise<OrganizationKeyInfo | null> {
    return (await this.orgKeys.current())?.info ?? null;
  }

  /** Trusts a changed OrgCard (after `orgKeyChange`); the backups held for it go out. */
  async acceptOrganizationKey(cardId: string): Promise<void> {
    await this.orgKeys.accept(cardId);
    await this.backups.releaseHeld();
  }

  /** Directory alerts raised and not accepted yet, oldest first (to show them again after a reload). */
  directoryAlerts(): Promise<DirectoryAlert[]> {
    return this.trust.alerts.open();
  }

  /** Checks this identity's chain in the log now (owner monitoring also does it on connect and every `monitorIntervalMs`). */
  checkOwnDevices(): Promise<void> {
    return this.trust.monitor.check();
  }

  /**
   * The app (its user) decided about a directory alert: it is not raised again, and a fork or
   * rollback stops blocking sends.
   */
  async acceptDirectoryAlert(alert: DirectoryAlert | string): Promise<void> {
    await this.trust.accept(typeof alert === 'string' ? alert : alert.id);
  }

  /** The active cards of `identity` (verified), fresh from the service. */
  async cardsOf(identity: string): Promise<VerifiedCard[]> {
    return (await this.directory.activeCards([identity], { refresh: true })).get(identity)!;
  }

  /** This identity's active devices. */
  devices(): Promise<VerifiedCard[]> {
    return this.cardsOf(this.identity);
  }

  /** Revokes one of this identity's cards (this device's or another's), with this device's proof. */
  async revokeDevice(cardId: string): Promise<void> {
    const prover = this.prover();
    const noted = this.trust.monitor.noteRevocation(cardId); // noted in memory before the service can log it
    try {
      await this.api.revokeCard(cardId, prover);
    } catch (err) {
      void noted.then(() => this.trust.monitor.forgetRevocation(cardId)).catch(() => undefined);
      throw err;
    }
    await noted;
    this.directory.invalidate(this.identity);
    void this.announceDeviceChange();
  }

  /**
   * New devices of this identity waiting for approval, oldest first. Only requests whose card is
   * self-signed, of this identity and named by its own id are listed: show `deviceName` and ask
   * the user whether it is theirs.
   */
  async pendingDevices(): Promise<PendingDevice[]> {
    const { requests } = await this.api.deviceRequests(this.prover());
    return requests.filter((request) => {
      try {
        const card = parseCardRequest({ snapshot: request.snapshot, selfSignature: request.selfSignature });
        return card.id === request.cardId && card.fields.identity === this.identity && card.fields.deviceName === request.deviceName;
      } catch {
        return false;
      }
    });
  }

  /** Approves a new device (from pendingDevices()); its card is registered and announced to contacts. */
  async approveDevice(cardId: string): Promise<VerifiedCard> {
    await this.trust.monitor.noteCard(cardId);
    const wire = await this.api.approveDevice(cardId, this.prover());
    const card = verifyCard(wire, { trustedAppKeys: trustAppKeys(this.options.appPublicKeys), identity: this.identity });
    if (card.id !== cardId) throw new E2EEError(ErrorCode.SERVER_ERROR, 'the service registered another card than the one approved');
    this.directory.invalidate(this.identity);
    void this.announceDeviceChange();
    return card;
  }

  /** Rejects a new device: its register() fails with DEVICE_NOT_APPROVED. */
  async rejectDevice(cardId: string): Promise<void> {
    await this.api.rejectDevice(cardId, this.prover());
  }

  /**
   * The 60-digit safety number (version 2) between this identity and `identity`, over every card
   * this device has seen for either (active and revoked) and each one's chain head in the card
   * log. Compare it out of band: equal numbers mean both apps saw the same devices and history.
   */
  async safetyNumber(identity: string): Promise<string> {
    const side = async (i: string) => ({ identity: i, signPublicKeys: await this.directory.seenSignKeys(i), chainHead: await this.trust.chainHead(i) });
    return safetyNumber(await side(this.identity), await side(identity));
  }
}

/** The E2EE client behind each wrapped client (for wrap(client, options), made in the background). */
const e2eeClients = new WeakMap<object, Promise<E2EEClient>>();

/**
 * The one line an app changes: `const client = wrap(new Client(token), options)`. Returns the
 * same client at once, typed as the SDK's Client; the E2EE client is created and this device
 * registered in the background (sends and deliveries wait for it; a failure is the client's
 * `initFailed` event). `e2eeClientOf(client)` gives the E2EE client (safety numbers, devices).
 */
export function wrap(client: Client | BaseClient, options: E2EEClientOptions & { register?: RegisterOptions }): Client {
  const e2ee = E2EEClient.create(options);
  const wrapper = new ClientWrapper(client as unknown as BaseClient, async (w) => {
    const created = await e2ee;
    await created.register(options.register);
    return created.engineFor(w);
  });
  e2eeClients.set(wrapper.client, e2ee);
  e2ee.catch(() => undefined); // reported as initFailed
  return wrapper.client;
}

/** The E2EE client of a wrapped client (for safety numbers, devices, key-change events). */
export function e2eeClientOf(client: Client): Promise<E2EEClient> {
  const e2ee = e2eeClients.get(client);
  if (!e2ee) return Promise.reject(new E2EEError(ErrorCode.INVALID_ARGUMENT, 'this client was not wrapped by twilio-e2ee'));
  return e2ee;
}
