/**
 * Attack 1 of issue 16 run against the demo in real Chromium: the service countersigns and logs
 * a card for bob that no device of his made, and alice (a device in Node) sends him a message
 * sealed for it. Bob's browser shows the red banner "A device you don't recognise was added to
 * your account" with a revoke button, and the message itself, verified and marked. Revoking from
 * the banner revokes the card.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadConfig } from '../../server/config.js';
import { describeWithChromium, launchBrowser, nodeDevice, screenshot, startDemoServer, watchErrors, type DemoServer } from '../support/browser.js';
import { registerRogueCard } from '../support/directory-attacks.js';

describeWithChromium('the demo\'s directory alert (Chromium)', () => {
  let server: DemoServer;
  let browser: Browser;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    [server, browser] = await Promise.all([startDemoServer(), launchBrowser()]);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  async function signIn(page: Page, name: string): Promise<void> {
    await page.goto(server.url);
    await page.getByTestId('identity-input').fill(name);
    await page.getByTestId('device-input').fill(`${name}’s browser`);
    await page.getByTestId('signin-submit').click();
    await page.getByTestId('connection').and(page.locator('[data-state="online"]')).waitFor();
  }

  it('shows attack 1 as a red banner with a revoke button, and the message verified and marked', { timeout: 90_000 }, async () => {
    const context = await browser.newContext({ viewport: { width: 1200, height: 760 } });
    const bob = await context.newPage();
    bob.setDefaultTimeout(15_000);
    watchErrors(bob, pageErrors);
    await signIn(bob, 'bob');

    const alice = await nodeDevice(server, 'alice', 'Alice’s laptop');
    await alice.register();
    const chat = await alice.connect();
    try {
      const conversation = await chat.createConversation({ friendlyName: 'Plans' });
      await conversation.join();
      await conversation.add('bob');
      await conversation.sendMessage('Hi Bob, before anything happened.');
      await bob.goto(`${server.url}/#/c/${encodeURIComponent(conversation.sid)}`);
      await bob.getByTestId('message').filter({ hasText: 'before anything happened' }).and(bob.locator('[data-status="verified"]')).waitFor();

      // The attack: a card for bob made by the service, logged; alice's next lookup serves it.
      const rogue = await registerRogueCard(server.store, await loadConfig({ DATA_DIR: server.dataDir, LOG_LEVEL: 'silent' }), 'bob');
      await new Promise((resolve) => setTimeout(resolve, 5_500)); // alice's card cache (5 s) runs out; the checkpoint proving the card (every 2 s) is out
      await conversation.sendMessage('Here are the bank details.');

      const banner = bob.getByTestId('directory-alert').and(bob.locator('[data-kind="rogue-device"]'));
      await banner.waitFor();
      expect(await banner.textContent()).toContain('A device you don’t recognise was added to your account.');
      expect(await banner.getAttribute('class')).toContain('tone-bad');
      const message = bob.getByTestId('message').filter({ hasText: 'Here are the bank details.' });
      await message.and(bob.locator('[data-status="verified"]')).waitFor();
      await message.getByTestId('directory-flag').waitFor();
      await screenshot(bob, 'directory-alert-rogue-device');

      await banner.getByTestId('revoke-rogue-device').click();
      await banner.waitFor({ state: 'detached' });
      await expect.poll(async () => (await server.store.getCard(rogue.id))?.revokedAt ?? null).not.toBeNull();
      expect(pageErrors).toEqual([]);
    } finally {
      alice.outbox.stop();
      await chat.shutdown();
      await context.close();
    }
  });
});
