/**
 * The AuthorizationStore contract: the device proof behind a card change is kept in the same
 * transaction as the change (a registration, its supersede's revocation, a revocation), and only
 * when the change happened; events made without a proof have none.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { CardAuthorization, Store } from '../../server/store/types.js';
import { cardId, makeCard, NOW, registerOptions, uid } from './store.fixtures.js';

const proof = (overrides: Partial<CardAuthorization> = {}): CardAuthorization => ({
  signerCardId: cardId(),
  timestamp: NOW,
  signature: new Uint8Array(randomBytes(64)),
  method: 'POST',
  path: `/v1/device-requests/${cardId()}/approve`,
  body: new Uint8Array(0),
  ...overrides,
});

export function authorizationContract(getStore: () => Store): void {
  describe('card authorizations', () => {
    it('keeps an approval with the registration, byte for byte', async () => {
      const store = getStore();
      const card = makeCard(uid('alice'));
      const approval = proof({ body: new Uint8Array([0, 1, 2, 255]) });
      expect((await store.registerCard(card, registerOptions({ authorization: approval }))).ok).toBe(true);
      expect(await store.cardAuthorizations([card.id])).toEqual([{ cardId: card.id, kind: 'registration', ...approval }]);
    });

    it('keeps nothing for a change made without a proof, or refused', async () => {
      const store = getStore();
      const identity = uid('bob');
      const plain = makeCard(identity);
      await store.registerCard(plain, registerOptions());
      const refused = makeCard(identity, { signKey: plain.signKey }); // a key in use
      expect(await store.registerCard(refused, registerOptions({ authorization: proof() }))).toEqual({ ok: false, reason: 'KEY_IN_USE' });
      expect(await store.cardAuthorizations([plain.id, refused.id, cardId()])).toEqual([]);
      expect(await store.cardAuthorizations([])).toEqual([]);
    });

    it('keeps a revocation\'s proof once, with the supersede\'s revocation too', async () => {
      const store = getStore();
      const identity = uid('carol');
      const [first, second, third] = [makeCard(identity), makeCard(identity), makeCard(identity)];
      await store.registerCard(first, registerOptions());
      await store.registerCard(second, registerOptions());
      const revoking = proof({ method: 'DELETE', path: `/v1/cards/${first.id}` });
      await store.revokeCard(first.id, NOW + 1, revoking);
      await store.revokeCard(first.id, NOW + 2, proof()); // revoked already: no second event, nothing kept
      const superseding = proof({ path: '/v1/cards', body: new TextEncoder().encode('{"card":1}') });
      expect(await store.registerCard(third, registerOptions({ supersedes: second.id, authorization: superseding }))).toEqual({ ok: true, superseded: second.id });
      const kept = await store.cardAuthorizations([first.id, second.id, third.id]);
      expect(kept).toHaveLength(3);
      expect(kept).toEqual(
        expect.arrayContaining([
          { cardId: first.id, kind: 'revocation', ...revoking },
          { cardId: second.id, kind: 'revocation', ...superseding },
          { cardId: third.id, kind: 'registration', ...superseding },
        ]),
      );
    });
  });
}
