/**
 * Renaming a conversation's unique name in the relay store, against SQLite and PostgreSQL: set,
 * replaced and removed; a name another conversation holds changes nothing, even alongside other
 * fields; of two concurrent renames to one name exactly one wins; a freed name can be taken.
 */
import { beforeAll, expect, it } from 'vitest';
import type { Store } from '../../server/store/types.js';
import { describeEachStore } from '../support/stores.js';
import { makeConversation, uid } from './store.fixtures.js';

describeEachStore('relay store: unique names', (stores) => {
  let store: Store;
  beforeAll(async () => {
    store = await stores().open();
  });

  const created = async (uniqueName: string | null = uid('room')) => (await store.createConversation(makeConversation({ uniqueName })))!;

  it('sets, replaces and removes a unique name; lookups follow it', async () => {
    const conversation = await created(null);
    const [first, second] = [uid('room'), uid('room')];
    expect(await store.updateConversation(conversation.sid, { uniqueName: first })).toEqual({ ...conversation, uniqueName: first });
    expect((await store.getConversation(first))?.sid).toBe(conversation.sid);
    expect(await store.updateConversation(conversation.sid, { uniqueName: second, friendlyName: 'renamed' })).toEqual({ ...conversation, uniqueName: second, friendlyName: 'renamed' });
    expect(await store.getConversation(first)).toBeNull();
    expect(await store.updateConversation(conversation.sid, { uniqueName: null })).toEqual({ ...conversation, uniqueName: null, friendlyName: 'renamed' });
    expect(await store.getConversation(second)).toBeNull();
    // A change without uniqueName keeps it.
    const named = (await store.updateConversation(conversation.sid, { uniqueName: first }))!;
    expect(await store.updateConversation(conversation.sid, { attributes: '{"a":1}' })).toEqual({ ...named, attributes: '{"a":1}' });
  });

  it("refuses another conversation's name (null), changing nothing, not even the other fields given", async () => {
    const holder = await created();
    const other = await created();
    expect(await store.updateConversation(other.sid, { uniqueName: holder.uniqueName, friendlyName: 'not applied', attributes: '{"x":1}' })).toBeNull();
    expect(await store.getConversation(other.sid)).toEqual(other);
    expect(await store.getConversation(holder.uniqueName!)).toEqual(holder);
  });

  it('of two concurrent renames to one name, exactly one wins; a freed name can be taken', async () => {
    const [a, b] = [await created(), await created()];
    const name = uid('room');
    const results = await Promise.all([store.updateConversation(a.sid, { uniqueName: name }), store.updateConversation(b.sid, { uniqueName: name })]);
    expect(results.filter((r) => r !== null).length).toBe(1);
    const winner = results.find((r) => r !== null)!;
    expect((await store.getConversation(name))?.sid).toBe(winner.sid);
    const loser = winner.sid === a.sid ? b : a;
    expect(await store.updateConversation(winner.sid, { uniqueName: null })).not.toBeNull();
    expect((await store.updateConversation(loser.sid, { uniqueName: name }))?.uniqueName).toBe(name);
  });

  it('null for an unknown conversation', async () => {
    expect(await store.updateConversation(uid('CH'), { uniqueName: uid('room') })).toBeNull();
  });
});
