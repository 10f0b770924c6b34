/**
 * What the open path checks beyond the envelope itself (docs/PROTOCOL.md 17.9): the recipient
 * audit and the sender's gossiped checkpoint of the card log, put together from the client's
 * parts (the card directory, the log view, the chains, owner monitoring). Findings are raised as
 * directory alerts and returned to mark the message.
 */
import { toHex } from '../shared/encoding.js';
import { ErrorCode, isE2EEError } from '../shared/errors.js';
import type { IdentityChain } from '../shared/log-event.js';
import type { CardDirectory } from './card-directory.js';
import type { NewDirectoryAlert } from './directory-alert.js';
import type { KeyStore } from './key-store.js';
import type { DirectoryTrust } from './log-trust.js';
import { RecipientAudit, type AuditFinding, type AuditInput } from './recipient-audit.js';

export interface MessageChecks {
  audit: RecipientAudit;
  /** This device's latest verified checkpoint of the card log, gossiped in every payload it seals. */
  latest(): Promise<{ size: number; root: Uint8Array } | undefined>;
  /** A peer's checkpoint: throws DIRECTORY_UNTRUSTED (after raising 'log-fork') when it is not consistent with this device's. */
  checkGossip(size: number, root: Uint8Array, context: GossipContext): Promise<void>;
  raise(alert: NewDirectoryAlert): Promise<unknown>;
  /** Peer checkpoints found consistent ("size:root"), so a burst of messages costs one check. */
  gossiped: Set<string>;
  /** Findings raised this session (kind, card or key id, conversation): one alert for a rogue card in many messages. */
  raised: Set<string>;
}

type GossipContext = { identity: string; conversationSid: string; messageSid: string };

/** The checks of one E2EE client, from its directory and its log trust. */
export function messageChecks(trust: DirectoryTrust, directory: CardDirectory, keyStore: KeyStore, me: string, ttlMs: number): MessageChecks {
  const audit = new RecipientAudit(
    {
      me,
      ownCards: () => trust.monitor.ownCards(),
      cachedCards: (identities) => directory.cachedCards(identities),
      activeCards: (identities) => directory.activeCards(identities, { refresh: true }),
      seenCards: (identity) => directory.seenCards(identity),
      chains: async (identities) => {
        // My own chain through owner monitoring, which also accepts what my other devices approved.
        if (identities.includes(me)) await trust.monitor.check().catch(() => undefined);
        const head = await trust.view.latest();
        // One request per identity (the events route takes one), all at once; each chain is kept, so later reads ask only for new events.
        const read = await Promise.all(identities.map(async (identity) => [identity, (await trust.chains.sync(identity, head)).verified.chain] as const));
        return new Map<string, IdentityChain>(read);
      },
    },
    keyStore,
    ttlMs,
  );
  return {
    audit,
    latest: () => trust.view.latest(),
    checkGossip: (size, root, context) => trust.view.checkGossip(size, root, context),
    raise: (alert) => trust.alerts.raise(alert),
    gossiped: new Set(),
    raised: new Set(),
  };
}

/**
 * The findings about one message opened from this device's slot: its recipient set audited and
 * its sender's checkpoint compared with this device's. Each is raised as a directory alert
 * (de-duplicated there) and returned, to mark the message. Never throws.
 */
export async function checkMessage(checks: MessageChecks, input: AuditInput & { messageSid: string; checkpoint?: { size: number; root: Uint8Array } }): Promise<AuditFinding[]> {
  const { conversation, messageSid, sender, checkpoint } = input;
  const context = { identity: sender, conversationSid: conversation.sid, messageSid };
  const [findings, fork] = await Promise.all([checks.audit.audit(input).catch(() => []), checkpoint ? gossip(checks, checkpoint, context) : null]);
  for (const f of findings) {
    const key = `${f.kind}|${f.cardId ?? f.keyId}|${conversation.sid}`;
    if (checks.raised.has(key)) continue;
    checks.raised.add(key);
    await checks.raise({ kind: f.kind, identity: f.identity, cardId: f.cardId, conversationSid: conversation.sid, messageSid, message: f.message, detail: f.keyId }).catch(() => undefined);
  }
  return fork ? [...findings, fork] : findings;
}

async function gossip(checks: MessageChecks, checkpoint: { size: number; root: Uint8Array }, context: GossipContext): Promise<AuditFinding | null> {
  const key = `${checkpoint.size}:${toHex(checkpoint.root)}`;
  if (checks.gossiped.has(key)) return null;
  try {
    await checks.checkGossip(checkpoint.size, checkpoint.root, context); // raises the 'log-fork' alert itself
    if (checks.gossiped.size >= 1000) checks.gossiped.clear();
    checks.gossiped.add(key);
    return null;
  } catch (err) {
    if (!isE2EEError(err, ErrorCode.DIRECTORY_UNTRUSTED)) return null; // offline: no finding either way
    return {
      kind: 'log-fork',
      identity: context.identity,
      message: `${context.identity} sees a different card directory log than this device: the service shows you different devices. Sending stops in this conversation until you decide; contact your administrator.`,
    };
  }
}
