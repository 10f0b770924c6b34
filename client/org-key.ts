/**
 * Which OrgCard this device backs history up to. Whoever holds the OrgCard's box key reads every
 * backed-up message, and the card service could countersign a card of its own with an "org:"
 * identity, so the OrgCard is never taken on the service's word alone: either it matches a key
 * pinned in the client configuration (`orgPublicKeys`), or it is trusted on first use and any
 * later change is announced (`orgKeyChange`) and gets no backups until the app accepts it.
 */
import type { TrustedAppKey, VerifiedCard } from '../shared/card.js';
import { fromB64u, toB64u } from '../shared/encoding.js';
import { E2EEError, ErrorCode } from '../shared/errors.js';
import { fingerprintDigits } from '../shared/safety-number.js';
import type { ApiClient } from './api-client.js';
import { fetchOrgCard } from './history.js';
import type { KeyStore } from './key-store.js';

export interface OrganizationKeyInfo {
  /** The OrgCard's identity, "org:<name>". */
  identity: string;
  cardId: string;
  /** b64u X25519 public key the backups are wrapped for. */
  boxPublicKey: string;
  /** 30 digits over the OrgCard's identity and keys, to compare out of band (read in groups of five). */
  fingerprint: string;
  /**
   * 'pinned': matches a key pinned in the configuration; 'trusted': trusted on first use and
   * unchanged since; 'changed': differs from the one trusted before (backups wait until the app
   * accepts it); 'untrusted': matches none of the pinned keys (no backups are made).
   */
  status: 'pinned' | 'trusted' | 'changed' | 'untrusted';
}

export interface OrgKeyChange {
  /** The OrgCard trusted until now (null when the first one seen was not pinned). */
  previous: OrganizationKeyInfo | null;
  current: OrganizationKeyInfo;
}

/** The OrgCard remembered as trusted, per local identity. */
interface TrustedOrgCard {
  identity: string;
  cardId: string;
  boxPublicKey: string;
  signPublicKey: string;
}

function infoOf(card: TrustedOrgCard, status: OrganizationKeyInfo['status']): OrganizationKeyInfo {
  const fingerprint = fingerprintDigits({ identity: card.identity, signPublicKeys: [fromB64u(card.signPublicKey), fromB64u(card.boxPublicKey)] });
  return { identity: card.identity, cardId: card.cardId, boxPublicKey: card.boxPublicKey, fingerprint, status };
}

function remembered(card: VerifiedCard): TrustedOrgCard {
  return { identity: card.identity, cardId: card.id, boxPublicKey: toB64u(card.boxPublicKey), signPublicKey: toB64u(card.signPublicKey) };
}

export class OrgKeyTrust {
  private served: Promise<{ card: VerifiedCard; info: OrganizationKeyInfo } | null> | null = null;

  constructor(
    private readonly api: ApiClient,
    private readonly trustedAppKeys: readonly TrustedAppKey[],
    /** b64u box public keys of the OrgCards this app was configured with; empty: trust on first use. */
    private readonly pins: readonly string[],
    private readonly keyStore: KeyStore,
    private readonly me: string,
    private readonly onChange: (change: OrgKeyChange) => void,
  ) {}

  private get stateKey(): string {
    return `org-key:${this.me}`;
  }

  /** The OrgCard the service serves and what this device makes of it; null without history. Fetched once per session. */
  current(): Promise<{ card: VerifiedCard; info: OrganizationKeyInfo } | null> {
    this.served ??= this.decide().catch((err: unknown) => {
      this.served = null; // ask again next time
      throw err;
    });
    return this.served;
  }

  private async decide(): Promise<{ card: VerifiedCard; info: OrganizationKeyInfo } | null> {
    const card = await fetchOrgCard(this.api, this.trustedAppKeys);
    if (!card) return null;
    const served = remembered(card);
    if (this.pins.length > 0) {
      const status = this.pins.includes(served.boxPublicKey) ? 'pinned' : 'untrusted';
      const info = infoOf(served, status);
      if (status === 'untrusted') this.onChange({ previous: null, current: info });
      return { card, info };
    }
    const text = await this.keyStore.getState(this.stateKey);
    const trusted = text ? (JSON.parse(text) as TrustedOrgCard) : null;
    if (trusted === null) {
      await this.keyStore.setState(this.stateKey, JSON.stringify(served));
      return { card, info: infoOf(served, 'trusted') };
    }
    // The same keys under a new card id (the AppKey was rotated, so the countersignature is new) are the same OrgKey.
    if (trusted.boxPublicKey === served.boxPublicKey && trusted.signPublicKey === served.signPublicKey) {
      if (trusted.cardId !== served.cardId) await this.keyStore.setState(this.stateKey, JSON.stringify(served));
      return { card, info: infoOf(served, 'trusted') };
    }
    const info = infoOf(served, 'changed');
    this.onChange({ previous: infoOf(trusted, 'trusted'), current: info });
    return { card, info };
  }

  /** The OrgCard to wrap backups for now; null without history. Throws ORG_KEY_CHANGED or ORG_KEY_UNTRUSTED. */
  async forBackup(): Promise<VerifiedCard | null> {
    const current = await this.current();
    if (!current) return null;
    if (current.info.status === 'changed') {
      throw new E2EEError(ErrorCode.ORG_KEY_CHANGED, 'the organization key changed: backups wait until the app accepts it (acceptOrganizationKey)');
    }
    if (current.info.status === 'untrusted') {
      throw new E2EEError(ErrorCode.ORG_KEY_UNTRUSTED, 'the service serves an organization key that matches none of orgPublicKeys: nothing is backed up');
    }
    return current.card;
  }

  /** Trusts the changed OrgCard `cardId` (the one `current()` reports) from now on. */
  async accept(cardId: string): Promise<void> {
    const current = await this.current();
    if (!current) throw new E2EEError(ErrorCode.INVALID_ARGUMENT, 'the service runs without organization history');
    if (current.info.status === 'untrusted') {
      throw new E2EEError(ErrorCode.ORG_KEY_UNTRUSTED, 'the organization key is pinned in the configuration: change orgPublicKeys to trust another');
    }
    if (current.card.id !== cardId) throw new E2EEError(ErrorCode.INVALID_ARGUMENT, `the organization card served now is ${current.card.id}, not ${cardId}`);
    if (current.info.status !== 'changed') return;
    const served = remembered(current.card);
    await this.keyStore.setState(this.stateKey, JSON.stringify(served));
    this.served = Promise.resolve({ card: current.card, info: infoOf(served, 'trusted') });
  }
}

/** Checks a configured pin list: b64u 32-byte keys. */
export function checkOrgPins(pins: unknown): string[] {
  if (pins === undefined) return [];
  if (!Array.isArray(pins) || !pins.every((p) => typeof p === 'string' && fromB64uLength(p) === 32)) {
    throw new E2EEError(ErrorCode.INVALID_ARGUMENT, 'orgPublicKeys: expected an array of b64u 32-byte OrgCard box public keys');
  }
  return pins as string[];
}

function fromB64uLength(text: string): number {
  try {
    return fromB64u(text).length;
  } catch {
    return -1;
  }
}
