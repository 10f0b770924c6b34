/**
 * Cards are used only once the transparency log proves them (docs/PROTOCOL.md 17.6): a valid
 * inclusion proof of the card's registration event in a checkpoint the LogView verified, from a
 * lookup's `log` member, or asked for after the next checkpoint when the event is newer than the
 * one served (a short bounded wait). A card with no event at all, or a proof that does not hold,
 * is an 'unlogged-card' alert and the card is refused (CARD_UNLOGGED). A card the identity's
 * verified chain shows revoked is refused too (CARD_REVOKED).
 */
import type { CardsLogProofs, LogLeafProof } from '../shared/api.js';
import type { VerifiedCard } from '../shared/card.js';
import { E2EEError, ErrorCode, isE2EEError } from '../shared/errors.js';
import { verifyLoggedCard } from '../shared/log-card.js';
import type { ApiClient } from './api-client.js';
import type { DirectoryAlerts } from './directory-alert.js';
import { reportBrokenChain, type IdentityChains } from './log-chains.js';
import type { LogView } from './log-view.js';

/** How long a card whose event is newer than the checkpoint may wait for the next one, and how often to ask. */
export const LOG_PROOF_WAIT_MS = 10_000;
const LOG_PROOF_POLL_MS = 250;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class CardLog {
  /** Cards whose registration was proven in this session. */
  private readonly proven = new Set<string>();
  private readonly waiting = new Map<string, Promise<void>>();

  constructor(
    private readonly api: ApiClient,
    readonly view: LogView,
    readonly chains: IdentityChains,
    private readonly alerts: DirectoryAlerts,
  ) {}

  /**
   * Checks a lookup's cards of `identity` against its `log` member (the checkpoint is adopted
   * first: `askedAt` is the view's size when the lookup was sent). Resolves once every card is
   * proven or refused; refusals come back with their error, kept ones in order.
   */
  async check(identity: string, cards: readonly VerifiedCard[], log: CardsLogProofs | undefined, askedAt: number): Promise<{ kept: VerifiedCard[]; refused: Array<{ card: VerifiedCard; error: E2EEError }> }> {
    const kept: VerifiedCard[] = [];
    const refused: Array<{ card: VerifiedCard; error: E2EEError }> = [];
    const revoked = await this.revokedIn(identity);
    const head = log && cards.length > 0 ? await this.view.adopt(log.checkpoint, askedAt) : null;
    await Promise.all(
      cards.map(async (card) => {
        try {
          if (revoked.has(card.id)) await this.suppressed(card);
          if (!this.proven.has(card.id)) await this.proveFromLookup(card, log, head?.size ?? 0);
          kept.push(card);
        } catch (err) {
          if (!isE2EEError(err) || err.code === ErrorCode.DIRECTORY_UNTRUSTED || err.code === ErrorCode.NETWORK_ERROR) throw err;
          refused.push({ card, error: err });
        }
      }),
    );
    const order = new Map(cards.map((c, i) => [c.id, i]));
    kept.sort((a, b) => order.get(a.id)! - order.get(b.id)!);
    return { kept, refused };
  }

  private async proveFromLookup(card: VerifiedCard, log: CardsLogProofs | undefined, size: number): Promise<void> {
    const entry = log?.proofs?.[card.id];
    if (!log || !entry) return this.unlogged(card, log ? 'it has no event in the log' : 'the service sent no log proofs');
    if (entry.proof === null) return this.awaitInclusion(card, entry.index);
    try {
      this.proveLeaf(card, entry, size);
    } catch (err) {
      if (!isE2EEError(err)) throw err;
      return this.unlogged(card, `its proof does not hold (${err.message})`);
    }
  }

  /** The lookup's (or the inclusion route's) proof of the card's registration in the held tree of `size`. */
  private proveLeaf(card: VerifiedCard, entry: LogLeafProof, size: number): void {
    const rootHash = this.view.rootOf(size);
    if (!rootHash) throw new E2EEError(ErrorCode.LOG_INCLUSION_INVALID, `no verified checkpoint of size ${size}`);
    verifyLoggedCard(card.id, card.identity, entry, { origin: '', size, rootHash, extensions: [] });
    this.proven.add(card.id);
  }

  /**
   * A card met outside a lookup (a message's sender, by id): its registration's proof in the
   * newest checkpoint, waiting briefly for the next one when it is not in it yet.
   */
  async prove(card: VerifiedCard): Promise<void> {
    if (this.proven.has(card.id)) return;
    if ((await this.revokedIn(card.identity)).has(card.id) && card.revokedAt === null) await this.suppressed(card);
    return this.awaitInclusion(card);
  }

  /**
   * Asks for the card's inclusion proof after each new checkpoint, for at most LOG_PROOF_WAIT_MS;
   * when a lookup gave its event's `index`, only once a checkpoint holds it (asking earlier is a 404).
   */
  private awaitInclusion(card: VerifiedCard, index = -1): Promise<void> {
    let waiting = this.waiting.get(card.id);
    if (!waiting) {
      waiting = this.pollInclusion(card, index).finally(() => this.waiting.delete(card.id));
      this.waiting.set(card.id, waiting);
    }
    return waiting;
  }

  private async pollInclusion(card: VerifiedCard, index: number): Promise<void> {
    const deadline = Date.now() + LOG_PROOF_WAIT_MS;
    let asked = -1;
    for (;;) {
      const head = await this.view.refresh();
      if (head.size > asked && head.size > index) {
        asked = head.size;
        try {
          const answer = await this.api.logInclusion({ cardId: card.id }, head.size);
          if (answer.size !== head.size) throw new E2EEError(ErrorCode.LOG_INCLUSION_INVALID, `a proof in the tree of ${answer.size}, not ${head.size}`);
          return this.proveLeaf(card, answer, head.size);
        } catch (err) {
          if (isE2EEError(err, ErrorCode.LOG_INCLUSION_INVALID)) {
            return this.unlogged(card, `its proof does not hold (${err.message})`);
          }
          if (!isE2EEError(err, ErrorCode.NOT_FOUND)) throw err;
        }
      }
      if (Date.now() + LOG_PROOF_POLL_MS > deadline) break;
      await sleep(LOG_PROOF_POLL_MS);
    }
    // Registered before the checkpoint yet never in it: hidden from the log.
    const registeredBeforeWait = card.fields.createdAt * 1000 < deadline - 2 * LOG_PROOF_WAIT_MS;
    if (registeredBeforeWait) return this.unlogged(card, 'it has no event in the log');
    throw new E2EEError(ErrorCode.CARD_UNLOGGED, `card ${card.id.slice(0, 16)}… of ${card.identity} is not in the log yet; try again shortly`);
  }

  private async unlogged(card: VerifiedCard, why: string): Promise<never> {
    await this.alerts.raise({
      kind: 'unlogged-card',
      identity: card.identity,
      cardId: card.id,
      message: `The card directory served a device of ${card.identity} ("${card.fields.deviceName}") that is not in its transparency log (${why}). It was not used. Contact your administrator.`,
    });
    throw new E2EEError(ErrorCode.CARD_UNLOGGED, `card ${card.id.slice(0, 16)}… of ${card.identity} is refused: ${why}`);
  }

  private async suppressed(card: VerifiedCard): Promise<never> {
    await this.alerts.raise({
      kind: 'suppressed-revocation',
      identity: card.identity,
      cardId: card.id,
      message: `The card directory still serves a device of ${card.identity} ("${card.fields.deviceName}") that was revoked, as its log shows. It is not used. Contact your administrator.`,
    });
    throw new E2EEError(ErrorCode.CARD_REVOKED, `the log shows card ${card.id.slice(0, 16)}… of ${card.identity} revoked`);
  }

  private readonly lastWatch = new Map<string, number>();

  /**
   * Reads a contact's chain again in the background when a card served is newer than it, or at
   * most every `intervalMs` when the log grew: a revocation the directory hides (still serving the
   * card) shows there. `stale` is told when a served card turned out revoked.
   */
  watch(identity: string, served: readonly VerifiedCard[], intervalMs: number, stale: (identity: string) => void): void {
    const last = this.lastWatch.get(identity) ?? 0;
    void (async () => {
      const [{ chain, size }, latest] = await Promise.all([this.chains.get(identity), this.view.latest()]);
      const known = new Set(chain.cards.map((c) => c.cardId));
      const due = served.some((c) => !known.has(c.id)) || Date.now() - last >= intervalMs;
      if (!due || !latest || latest.size <= size) return;
      this.lastWatch.set(identity, Date.now());
      const { verified } = await this.chains.sync(identity, latest);
      const revoked = new Set(verified.chain.cards.filter((c) => c.revokedAt !== null).map((c) => c.cardId));
      const hidden = served.filter((c) => revoked.has(c.id));
      for (const card of hidden) await this.suppressed(card).catch(() => undefined);
      if (hidden.length > 0) stale(identity);
    })().catch((err: unknown) => reportBrokenChain(this.alerts, identity, err, false)); // anything else: retried on a later lookup
  }

  /** Card ids the identity's verified chain shows revoked. */
  private async revokedIn(identity: string): Promise<Set<string>> {
    const { chain } = await this.chains.get(identity);
    return new Set(chain.cards.filter((c) => c.revokedAt !== null).map((c) => c.cardId));
  }
}
