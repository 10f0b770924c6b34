/**
 * The rows a database made by an earlier release holds (inserted with RELEASED_ROWS after the
 * released migrations, store.released-migrations.ts), and what a store opened on it must serve.
 */
import { expect } from 'vitest';
import type { Store } from '../../server/store/types.js';
import { makeCard, makeConversation, makeHistory, makeMessage, registerOptions, uid } from './store.fixtures.js';

/** What a database made by an earlier release holds: a card, a conversation with a participant and a message. */
const released = {
  card: makeCard(uid('alice')),
  conversationSid: uid('CH'),
  participantSid: uid('MB'),
  history: makeHistory(uid('CH'), 0),
};
export const RELEASED_ROWS = [
  `INSERT INTO cards (id, identity, device_id, sign_key, box_key, snapshot, self_signature, app_signature, app_key_id, created_at, registered_at)
    VALUES ('${released.card.id}', '${released.card.identity}', '${released.card.deviceId}', '${released.card.signKey}', '${released.card.boxKey}',
      '${released.card.snapshot}', '${released.card.selfSignature}', '${released.card.appSignature}', '${released.card.appKeyId}',
      ${released.card.createdAt}, ${released.card.registeredAt})`,
  `INSERT INTO conversations (sid, attributes, created_by, date_created_ms) VALUES ('${released.conversationSid}', '{}', 'alice', 1)`,
  `INSERT INTO participants (sid, conversation_sid, identity, date_created_ms) VALUES ('${released.participantSid}', '${released.conversationSid}', 'alice', 1)`,
  `INSERT INTO history (conversation_sid, message_sid, idx, author, sender_card_id, envelope, org_wrap, stored_at_ms)
    VALUES ('${released.history.conversationSid}', '${released.history.messageSid}', 0, '${released.history.author}',
      '${released.history.senderCardId}', '${released.history.envelope}', '${released.history.orgWrap}', ${released.history.storedAtMs})`,
];

/**
 * The released data is there, the participant got the attributes column's default, the history copy
 * counts as an original (edit counter 0, so an edit replaces it), and new writes work.
 */
export async function expectReleasedDataServed(store: Store): Promise<void> {
  expect(await store.getCard(released.card.id)).toEqual(released.card);
  // Migration 8 logged the card registered before the log.
  expect((await store.cardEvents([released.card.id])).get(released.card.id)).toMatchObject({ index: 0, seq: 0, identity: released.card.identity });
  expect(await store.participants(released.conversationSid)).toEqual([
    { sid: released.participantSid, conversationSid: released.conversationSid, identity: 'alice', attributes: '{}', dateCreatedMs: 1, lastReadMessageIndex: null },
  ]);
  expect(await store.getHistory(released.history.conversationSid, released.history.messageSid)).toEqual(released.history);
  expect(await store.putHistory({ ...released.history, envelope: 'edited', editN: 1 })).toBe('replaced');
  expect((await store.appendMessage(makeMessage(released.conversationSid))).index).toBe(0);
  expect((await store.registerCard(makeCard(uid('bob')), registerOptions())).ok).toBe(true);
  expect(await store.createConversation(makeConversation())).not.toBeNull();
}
