/**
 * Device sessions (docs/API.md "Device proofs", "Adding a device"; the security review's finding
 * 4): a stolen app token, or a revoked device's token and key, can neither add a device nor
 * revoke the owner's devices; an existing device approves new ones; every kind of bad proof gets
 * its typed 4xx. On both stores, with the real server, core and crypto.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../server/config.js';
import { MAX_PENDING_DEVICES_PER_IDENTITY } from '../../server/device-auth.js';
import { ApiPath, type DeviceRequestStatus, type DeviceRequestsResponse, type PendingDevice } from '../../shared/api.js';
import { DEVICE_PROOF_MAX_SKEW_SECONDS } from '../../shared/limits.js';
import { DEVICE_PROOF_HEADER } from '../../shared/device-proof.js';
import { appKeyFromB64u, createCardRequest, toB64u, trustAppKeys, verifyCard, type CardWire } from '../../shared/index.js';
import {
  errorCode,
  newDevice,
  postCard,
  proved,
  revokeCard,
  session,
  testApp,
  testEnv,
  type ProvingDevice,
  type ServerApp,
  type TestUser,
} from '../support/app.js';
import { TEST_APP_KEY } from '../support/env.js';
import { describeEachStore } from '../support/stores.js';

const unixNow = () => Math.floor(Date.now() / 1000);

describeEachStore('device proofs', (stores) => {
  let approval: ServerApp;
  let open: ServerApp;
  beforeAll(async () => {
    approval = await testApp(stores(), { env: { NEW_DEVICE_POLICY: 'approval' } });
    open = await testApp(stores(), { env: { NEW_DEVICE_POLICY: 'open' } });
  });
  afterAll(async () => {
    await approval.app.close();
    await open.app.close();
  });

  /** Registers a device of `user` (with `approver`'s proof once the identity has a device). */
  async function addDevice(t: ServerApp, user: TestUser, approver?: ProvingDevice): Promise<ProvingDevice & { card: CardWire }> {
    const device = await newDevice(user.identity);
    const res = await postCard(t.app, user, device.request, approver);
    expect(res.statusCode, res.body).toBe(201);
    const card = res.json<CardWire>();
    return { keys: device.keys, cardId: card.id, card };
  }

  async function activeIds(t: ServerApp, user: TestUser): Promise<string[]> {
    const res = await t.app.inject({ url: `${ApiPath.cards}?identity=${encodeURIComponent(user.identity)}`, headers: user.headers });
    return res.json<{ cards: Record<string, CardWire[]> }>().cards[user.identity]!.map((c) => c.id);
  }

  describe('a revoked device (its app token and its device key)', () => {
    for (const policy of ['approval', 'open'] as const) {
      it(`cannot register a new card nor revoke the owner's other devices (${policy})`, async () => {
        const t = policy === 'approval' ? approval : open;
        const alice = await session(t.app);
        const phone = await addDevice(t, alice);
        const laptop = await addDevice(t, alice, phone);
        // The phone is stolen; the owner revokes it from the laptop.
        expect((await revokeCard(t.app, alice, phone.cardId, laptop)).statusCode).toBe(200);

        const registered = await postCard(t.app, alice, (await newDevice(alice.identity)).request, phone);
        expect(registered.statusCode).toBe(403);
        expect(errorCode(registered)).toBe('DEVICE_REVOKED');
        const revoked = await revokeCard(t.app, alice, laptop.cardId, phone);
        expect(revoked.statusCode).toBe(403);
        expect(errorCode(revoked)).toBe('DEVICE_REVOKED');
        const listed = await t.app.inject(await proved(alice, phone, 'GET', ApiPath.deviceRequests));
        expect(errorCode(listed)).toBe('DEVICE_REVOKED');
        expect(await activeIds(t, alice)).toEqual([laptop.cardId]);
      });
    }
  });

  describe('a stolen app token alone', () => {
    it('cannot register a card (202: a request the owner\'s devices must approve) nor revoke, under the approval policy', async () => {
      const alice = await session(approval.app);
      const phone = await addDevice(approval, alice);
      const thief = await newDevice(alice.identity, { deviceName: 'not a thief' });

      const registered = await postCard(approval.app, alice, thief.request);
      expect(registered.statusCode).toBe(202);
      const pending = registered.json<PendingDevice>();
      expect(pending).toMatchObject({ identity: alice.identity, deviceName: 'not a thief', status: 'pending' });
      expect(await activeIds(approval, alice)).toEqual([phone.cardId]);
      expect((await approval.app.inject({ url: ApiPath.card(pending.cardId), headers: alice.headers })).statusCode).toBe(404);

      const revoked = await approval.app.inject({ method: 'DELETE', url: ApiPath.card(phone.cardId), headers: alice.headers });
      expect(revoked.statusCode).toBe(401);
      expect(errorCode(revoked)).toBe('DEVICE_PROOF_REQUIRED');
      const approved = await approval.app.inject({ method: 'POST', url: ApiPath.approveDevice(pending.cardId), headers: alice.headers });
      expect(approved.statusCode).toBe(401);
      expect(errorCode(approved)).toBe('DEVICE_PROOF_REQUIRED');
      expect(await activeIds(approval, alice)).toEqual([phone.cardId]);
    });

    it('registers a card under the open policy, listed beside the owner\'s (a key change), but still cannot revoke', async () => {
      const alice = await session(open.app);
      const phone = await addDevice(open, alice);
      const thief = await addDevice(open, alice);
      expect(await activeIds(open, alice)).toEqual([phone.cardId, thief.cardId]);
      const revoked = await open.app.inject({ method: 'DELETE', url: ApiPath.card(phone.cardId), headers: alice.headers });
      expect(errorCode(revoked)).toBe('DEVICE_PROOF_REQUIRED');
    });

    it('registers the identity\'s first device without a proof (nothing to approve it)', async () => {
      const alice = await session(approval.app);
      const first = await addDevice(approval, alice);
      expect(await activeIds(approval, alice)).toEqual([first.cardId]);
    });
  });

  describe('approval by an existing device', () => {
    it('lists the request, approves it (201, the card the new device signed), and the new device sees "approved"', async () => {
      const alice = await session(approval.app);
      const phone = await addDevice(approval, alice);
      const tablet = await newDevice(alice.identity, { deviceName: 'tablet' });
      const pending = (await postCard(approval.app, alice, tablet.request)).json<PendingDevice>();
      const status = () => approval.app.inject({ url: ApiPath.deviceRequest(pending.cardId), headers: alice.headers });
      expect((await status()).json<DeviceRequestStatus>()).toEqual({ status: 'pending', card: null });

      const listed = await approval.app.inject(await proved(alice, phone, 'GET', ApiPath.deviceRequests));
      expect(listed.statusCode).toBe(200);
      expect(listed.json<DeviceRequestsResponse>().requests).toEqual([pending]);
      expect(pending.snapshot).toBe(tablet.request.snapshot);

      const approved = await approval.app.inject(await proved(alice, phone, 'POST', ApiPath.approveDevice(pending.cardId)));
      expect(approved.statusCode, approved.body).toBe(201);
      const card = approved.json<CardWire>();
      expect(card.id).toBe(pending.cardId);
      expect(verifyCard(card, { trustedAppKeys: trustAppKeys([toB64u(appKeyFromB64u(TEST_APP_KEY).publicKey)]), identity: alice.identity }).id).toBe(card.id);
      expect(await activeIds(approval, alice)).toEqual([phone.cardId, card.id]);
      expect((await status()).json<DeviceRequestStatus>()).toEqual({ status: 'approved', card });
      // Decided once: approving again finds nothing pending.
      const again = await approval.app.inject(await proved(alice, phone, 'POST', ApiPath.approveDevice(pending.cardId)));
      expect(again.statusCode).toBe(404);
    });

    it('rejects a request: the new device sees "rejected", it cannot be approved, and it is no longer listed', async () => {
      const alice = await session(approval.app);
      const phone = await addDevice(approval, alice);
      const pending = (await postCard(approval.app, alice, (await newDevice(alice.identity)).request)).json<PendingDevice>();
      const rejected = await approval.app.inject(await proved(alice, phone, 'POST', ApiPath.rejectDevice(pending.cardId)));
      expect(rejected.json<DeviceRequestStatus>()).toEqual({ status: 'rejected', card: null });
      const status = await approval.app.inject({ url: ApiPath.deviceRequest(pending.cardId), headers: alice.headers });
      expect(status.json<DeviceRequestStatus>().status).toBe('rejected');
      const approved = await approval.app.inject(await proved(alice, phone, 'POST', ApiPath.approveDevice(pending.cardId)));
      expect(approved.statusCode).toBe(404);
      const listed = await approval.app.inject(await proved(alice, phone, 'GET', ApiPath.deviceRequests));
      expect(listed.json<DeviceRequestsResponse>().requests).toEqual([]);
      expect(await activeIds(approval, alice)).toEqual([phone.cardId]);
    });

    it('a device with a proof adds a device directly (201), e.g. a replacement card superseding its own', async () => {
      const alice = await session(approval.app);
      const phone = await addDevice(approval, alice);
      const next = await newDevice(alice.identity, { previousCardId: phone.cardId });
      const res = await postCard(approval.app, alice, next.request, phone);
      expect(res.statusCode).toBe(201);
      expect(await activeIds(approval, alice)).toEqual([res.json<CardWire>().id]);
    });

    it(`keeps at most ${MAX_PENDING_DEVICES_PER_IDENTITY} pending requests per identity; a device asking again replaces its own`, async () => {
      const alice = await session(approval.app);
      await addDevice(approval, alice);
      const asking = await newDevice(alice.identity);
      expect((await postCard(approval.app, alice, asking.request)).statusCode).toBe(202);
      for (let i = 1; i < MAX_PENDING_DEVICES_PER_IDENTITY; i++) {
        expect((await postCard(approval.app, alice, (await newDevice(alice.identity)).request)).statusCode).toBe(202);
      }
      const over = await postCard(approval.app, alice, (await newDevice(alice.identity)).request);
      expect(over.statusCode).toBe(409);
      expect(errorCode(over)).toBe('TOO_MANY_PENDING_DEVICES');
      // The same card again is the same request; the same keys in a new card replace it.
      expect((await postCard(approval.app, alice, asking.request)).statusCode).toBe(202);
      const retry = createCardRequest(asking.keys, { identity: alice.identity, deviceId: 'retry', deviceName: '' });
      expect((await postCard(approval.app, alice, retry)).statusCode).toBe(202);
    });

    it('only the identity sees its requests: another identity gets 404 for their status and cannot approve them', async () => {
      const alice = await session(approval.app);
      const bob = await session(approval.app);
      await addDevice(approval, alice);
      const bobsPhone = await addDevice(approval, bob);
      const pending = (await postCard(approval.app, alice, (await newDevice(alice.identity)).request)).json<PendingDevice>();
      expect((await approval.app.inject({ url: ApiPath.deviceRequest(pending.cardId), headers: bob.headers })).statusCode).toBe(404);
      const approved = await approval.app.inject(await proved(bob, bobsPhone, 'POST', ApiPath.approveDevice(pending.cardId)));
      expect(approved.statusCode).toBe(404);
      const listed = await approval.app.inject(await proved(bob, bobsPhone, 'GET', ApiPath.deviceRequests));
      expect(listed.json<DeviceRequestsResponse>().requests).toEqual([]);
    });
  });

  describe('bad proofs get their typed 4xx and change nothing', () => {
    let alice: TestUser;
    let phone: ProvingDevice;
    let laptop: ProvingDevice;
    let bobsPhone: ProvingDevice;
    beforeAll(async () => {
      alice = await session(approval.app);
      phone = await addDevice(approval, alice);
      laptop = await addDevice(approval, alice, phone);
      const bob = await session(approval.app);
      bobsPhone = await addDevice(approval, bob);
    });

    /** DELETE the laptop's card with this proof header. */
    async function revokeWith(header: string): Promise<{ status: number; code: string }> {
      const res = await approval.app.inject({ method: 'DELETE', url: ApiPath.card(laptop.cardId), headers: { ...alice.headers, [DEVICE_PROOF_HEADER]: header } });
      return { status: res.statusCode, code: errorCode(res) };
    }
    const headerOf = async (by: ProvingDevice, method: 'GET' | 'POST' | 'DELETE', url: string, body?: unknown, timestamp?: number) =>
      String((await proved(alice, by, method, url, body, timestamp)).headers![DEVICE_PROOF_HEADER]);

    it('another identity\'s card: 403 FORBIDDEN', async () => {
      expect(await revokeWith(await headerOf(bobsPhone, 'DELETE', ApiPath.card(laptop.cardId)))).toEqual({ status: 403, code: 'FORBIDDEN' });
    });

    it('a card id that is not the signer\'s, or no card at all: 401 DEVICE_PROOF_INVALID', async () => {
      const real = await headerOf(phone, 'DELETE', ApiPath.card(laptop.cardId));
      const [, time, signature] = real.split('.');
      expect(await revokeWith(`${laptop.cardId}.${time}.${signature}`)).toEqual({ status: 401, code: 'DEVICE_PROOF_INVALID' });
      expect(await revokeWith(`${'0'.repeat(64)}.${time}.${signature}`)).toEqual({ status: 401, code: 'DEVICE_PROOF_INVALID' });
    });

    it(`a timestamp more than ${DEVICE_PROOF_MAX_SKEW_SECONDS} s away: 401 DEVICE_PROOF_EXPIRED (within it: accepted)`, async () => {
      const url = ApiPath.card(laptop.cardId);
      for (const offset of [-DEVICE_PROOF_MAX_SKEW_SECONDS - 5, DEVICE_PROOF_MAX_SKEW_SECONDS + 5, -86_400]) {
        expect(await revokeWith(await headerOf(phone, 'DELETE', url, undefined, unixNow() + offset))).toEqual({ status: 401, code: 'DEVICE_PROOF_EXPIRED' });
      }
      // A correct proof 60 s old still works (GET: changes nothing).
      const listed = await approval.app.inject(await proved(alice, phone, 'GET', ApiPath.deviceRequests, undefined, unixNow() - 60));
      expect(listed.statusCode).toBe(200);
    });

    it('a bad signature, or a proof of another request (path, method, body): 401 DEVICE_PROOF_INVALID', async () => {
      const real = await headerOf(phone, 'DELETE', ApiPath.card(laptop.cardId));
      const flipped = real.slice(0, -2) + (real.at(-2) === 'A' ? 'B' : 'A') + real.at(-1);
      const others = [
        flipped,
        await headerOf(phone, 'DELETE', ApiPath.card(phone.cardId)), // another card's revocation
        await headerOf(phone, 'GET', ApiPath.card(laptop.cardId)), // another method
        await headerOf(phone, 'DELETE', `${ApiPath.card(laptop.cardId)}?x=1`), // another query
      ];
      for (const header of others) expect(await revokeWith(header)).toEqual({ status: 401, code: 'DEVICE_PROOF_INVALID' });
      // A registration's proof covers its body: the same proof with another card is refused.
      const signed = await newDevice(alice.identity);
      const other = await newDevice(alice.identity);
      const options = await proved(alice, phone, 'POST', ApiPath.cards, signed.request);
      const res = await approval.app.inject({ ...options, payload: JSON.stringify(other.request) });
      expect(res.statusCode).toBe(401);
      expect(errorCode(res)).toBe('DEVICE_PROOF_INVALID');
    });

    it('a malformed header: 401 DEVICE_PROOF_INVALID', async () => {
      const real = await headerOf(phone, 'DELETE', ApiPath.card(laptop.cardId));
      const [id, time, signature] = real.split('.') as [string, string, string];
      const malformed = [
        '',
        'garbage',
        `${id}.${time}`,
        `${id}.${time}.${signature}.extra`,
        `${id.toUpperCase()}.${time}.${signature}`,
        `${id}.0${time}.${signature}`,
        `${id}.-${time}.${signature}`,
        `${id}.${time}.${signature.slice(1)}`,
        `${id}.${time}.${signature.slice(0, -1)}_`, // stray bits in the last character
        `${id}.${time}.${signature.replace(/[A-Za-z]/, '+')}`,
        `${id}.1e9.${signature}`,
        `${real}, ${real}`, // the header twice
      ];
      for (const header of malformed) expect(await revokeWith(header), header).toEqual({ status: 401, code: 'DEVICE_PROOF_INVALID' });
      expect(await activeIds(approval, alice)).toEqual([phone.cardId, laptop.cardId]);
    });
  });
});

describe('NEW_DEVICE_POLICY', () => {
  it('defaults to open in demo mode and to approval otherwise; other values are named problems', async () => {
    expect((await loadConfig(testEnv())).newDevicePolicy).toBe('open');
    const secret = 'x'.repeat(40);
    expect((await loadConfig(testEnv({ AUTH_JWT_SECRET: secret }))).newDevicePolicy).toBe('approval');
    expect((await loadConfig(testEnv({ AUTH_JWT_SECRET: secret, NEW_DEVICE_POLICY: 'open' }))).newDevicePolicy).toBe('open');
    await expect(loadConfig(testEnv({ NEW_DEVICE_POLICY: 'anyone' }))).rejects.toThrow(/NEW_DEVICE_POLICY must be one of approval, open/);
  });
});
