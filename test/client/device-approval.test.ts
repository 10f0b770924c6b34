/**
 * Adding and removing devices through the real client against a real server (local relay):
 * under NEW_DEVICE_POLICY=approval a new device waits until an existing one approves it, a
 * rejected one fails with DEVICE_NOT_APPROVED, and a revoked device can neither revoke nor
 * approve; under the open policy a device added with the app token alone is a loud key change.
 */
import type { Message } from '@twilio/conversations';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, isE2EEError, type E2EEClient, type KeyChange, type PendingDevice } from '../../client/index.js';
import { nextEvents } from '../support/concurrency.js';
import { device, startLoopbackServer, type LoopbackServer } from '../support/loopback-server.js';

const FAST = { approvalPollMs: 20 };

/** The error a promise rejects with (fails the test when it resolves). */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

describe('NEW_DEVICE_POLICY=approval', () => {
  let server: LoopbackServer;
  let phone: E2EEClient;
  let bob: E2EEClient;
  beforeAll(async () => {
    server = await startLoopbackServer({ env: { NEW_DEVICE_POLICY: 'approval' } });
    phone = await device(server, 'alice', { deviceName: 'phone', cardCacheTtlMs: 0 });
    bob = await device(server, 'bob', { deviceName: 'desktop', cardCacheTtlMs: 0 });
    await phone.register(); // the identity's first device: no approval needed
    await bob.register();
  });
  afterAll(() => server?.close());

  it('a new device waits for approval; the existing device lists and approves it; then it chats', async () => {
    const laptop = await device(server, 'alice', { deviceName: 'laptop', cardCacheTtlMs: 0 });
    const pendingEvent = nextEvents<PendingDevice>(laptop, 'deviceApprovalPending');
    const bobSeesIt = nextEvents<KeyChange>(bob, 'keyChange');
    await bob.cardsOf('alice'); // bob has seen alice's phone
    const registering = laptop.register(FAST);
    const [pending] = await pendingEvent;
    expect(pending).toMatchObject({ identity: 'alice', deviceName: 'laptop', status: 'pending' });
    expect((await phone.devices()).map((c) => c.id)).toEqual([phone.card!.id]); // not a device yet

    const listed = await phone.pendingDevices();
    expect(listed.map((p) => [p.cardId, p.deviceName])).toEqual([[pending!.cardId, 'laptop']]);
    const approved = await phone.approveDevice(pending!.cardId);
    const card = await registering;
    expect(card.id).toBe(approved.id);
    expect(laptop.card!.id).toBe(pending!.cardId);
    expect((await phone.devices()).map((c) => c.id)).toEqual([phone.card!.id, card.id]);
    expect(await phone.pendingDevices()).toEqual([]);

    // The approved device is a key change for contacts, and a full member of the conversation.
    await bob.cardsOf('alice');
    expect((await bobSeesIt)[0]).toMatchObject({ identity: 'alice', added: [card.id] });
    const [bobChat, laptopChat] = await Promise.all([bob.connect(), laptop.connect()]);
    try {
      const conversation = await bobChat.createConversation({ friendlyName: 'approved' });
      await conversation.join();
      const laptopAdded = nextEvents(laptopChat, 'conversationAdded');
      await conversation.add('alice');
      await laptopAdded;
      const atLaptop = nextEvents<Message>(laptopChat, 'messageAdded');
      await conversation.sendMessage('welcome, laptop');
      const [message] = await atLaptop;
      expect(message!.body).toBe('welcome, laptop');
      expect(message!.e2ee?.status).toBe('verified');
    } finally {
      await Promise.all([bobChat.shutdown(), laptopChat.shutdown()]);
    }
  });

  it('a device with only the app token (a thief) is listed, rejected, and its register() fails DEVICE_NOT_APPROVED', async () => {
    const thief = await device(server, 'alice', { deviceName: 'not a thief' });
    const pendingEvent = nextEvents<PendingDevice>(thief, 'deviceApprovalPending');
    const registering = rejection(thief.register(FAST));
    const [pending] = await pendingEvent;
    expect((await phone.pendingDevices()).map((p) => p.deviceName)).toEqual(['not a thief']);
    await phone.rejectDevice(pending!.cardId);
    const err = await registering;
    expect(isE2EEError(err, ErrorCode.DEVICE_NOT_APPROVED)).toBe(true);
    expect((err as { details?: unknown }).details).toMatchObject({ reason: 'rejected', cardId: pending!.cardId });
    expect(thief.card).toBeNull();
    expect((await phone.devices()).map((c) => c.fields.deviceName)).not.toContain('not a thief');
  });

  it('a revoked device can neither revoke, list nor approve, and registers again only as a new device with approval', async () => {
    const tablet = await device(server, 'alice', { deviceName: 'tablet' });
    const pendingEvent = nextEvents<PendingDevice>(tablet, 'deviceApprovalPending');
    const registering = tablet.register(FAST);
    await phone.approveDevice((await pendingEvent)[0]!.cardId);
    const tabletCard = await registering;

    await phone.revokeDevice(tabletCard.id); // the tablet was stolen
    for (const attempt of [tablet.revokeDevice(phone.card!.id), tablet.pendingDevices(), tablet.approveDevice(phone.card!.id)]) {
      const err = await rejection(attempt);
      expect(isE2EEError(err, ErrorCode.DEVICE_REVOKED)).toBe(true);
      expect((err as { details?: unknown }).details).toEqual({ status: 403 });
    }
    expect((await phone.devices()).map((c) => c.id)).toContain(phone.card!.id);

    // register() notices the revocation and starts over as a new device, which needs approval again.
    const again = nextEvents<PendingDevice>(tablet, 'deviceApprovalPending');
    const reregistering = rejection(tablet.register(FAST));
    const [pending] = await again;
    expect(pending!.cardId).not.toBe(tabletCard.id);
    await phone.rejectDevice(pending!.cardId);
    expect((await reregistering as { details?: unknown }).details).toMatchObject({ reason: 'rejected' });
  });
});

describe('NEW_DEVICE_POLICY=open', () => {
  let server: LoopbackServer;
  beforeAll(async () => {
    server = await startLoopbackServer({ env: { NEW_DEVICE_POLICY: 'open' } });
  });
  afterAll(() => server?.close());

  it('a device added with the app token alone registers, and the owner\'s other devices and contacts see a keyChange', async () => {
    const phone = await device(server, 'carol', { deviceName: 'phone', cardCacheTtlMs: 0 });
    const dave = await device(server, 'dave', { cardCacheTtlMs: 0 });
    await phone.register();
    await dave.register();
    await dave.cardsOf('carol');
    await phone.cardsOf('carol');
    const daveSees = nextEvents<KeyChange>(dave, 'keyChange');
    const phoneSees = nextEvents<KeyChange>(phone, 'keyChange');

    const stranger = await device(server, 'carol', { deviceName: 'stranger' });
    const card = await stranger.register(); // no approval asked
    await dave.cardsOf('carol');
    await phone.cardsOf('carol');
    expect((await daveSees)[0]).toMatchObject({ identity: 'carol', added: [card.id] });
    expect((await phoneSees)[0]).toMatchObject({ identity: 'carol', added: [card.id] });
  });
});
