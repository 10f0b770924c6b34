/**
 * Files in the demo web client, in real Chromium against a real server (SQLite, local relay):
 * alice attaches a photo and a PDF, bob sees the photo's preview at once and the photo after its
 * verified download, and the PDF as a card; both download byte for byte; the relay holds only
 * opaque blobs (as "What Twilio sees" shows); a support agent added later opens both from
 * history; a tampered blob fails on its own card; a file too large and too many files are refused
 * before anything is sent.
 */
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import type { Browser, BrowserContext, Download, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithChromium, launchBrowser, screenshot, startDemoServer, watchErrors, type DemoServer } from '../support/browser.js';

const WIDE = { width: 1200, height: 860 };

/** An RGB PNG: a sky-to-hills gradient with noise, so its bytes are unlike anything else stored. */
function makePng(width: number, height: number): Buffer {
  const rows = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) {
    const row = y * (width * 3 + 1); // filter byte 0 (none), then pixels
    for (let x = 0; x < width; x++) {
      const hill = y > height * 0.62 + Math.sin(x / 37) * 18;
      const t = y / height;
      const rgb = hill ? [40 + 30 * t, 110 - 20 * t, 60] : [250 - 90 * t, 150 + 40 * t, 90 + 150 * t];
      for (let c = 0; c < 3; c++) rows[row + 1 + x * 3 + c] = Math.max(0, Math.min(255, Math.round(rgb[c]! + (Math.random() - 0.5) * 24)));
    }
  }
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const out = Buffer.alloc(body.length + 8);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc32(body), body.length + 4);
    return out;
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', header), chunk('IDAT', deflateSync(rows)), chunk('IEND', Buffer.alloc(0))]);
}

/** A one-page PDF with a line of text (and a random token, to look for in the relay's storage). */
function makePdf(text: string): Buffer {
  const content = `BT /F1 16 Tf 36 100 Td (${text}) Tj ET`;
  const objects = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 420 200] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>',
    `<< /Length ${content.length} >>\nstream\n${content}\nendstream`,
    '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>',
  ];
  let out = '%PDF-1.4\n';
  const offsets = objects.map((object, i) => {
    const at = out.length;
    out += `${i + 1} 0 obj\n${object}\nendobj\n`;
    return at;
  });
  const xref = out.length;
  out += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n${offsets.map((o) => `${String(o).padStart(10, '0')} 00000 n \n`).join('')}`;
  out += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(out, 'latin1');
}

/** Every file under `dir`, recursively. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)]));
}

/** Windows of `plain` (start, middle, end) that must not appear in any stored byte. */
function windows(plain: Buffer): Buffer[] {
  const size = Math.min(48, plain.length);
  return [0, Math.floor((plain.length - size) / 2), plain.length - size].map((at) => plain.subarray(at, at + size));
}

const PHOTO = makePng(480, 320);
const PDF_TOKEN = `itinerary-${Math.random().toString(36).slice(2, 12)}`;
const PDF = makePdf(`Saturday: trailhead 8:00, summit 11:30 (${PDF_TOKEN})`);

describeWithChromium('files in the demo (Chromium)', () => {
  let server: DemoServer;
  let browser: Browser;
  const contexts: BrowserContext[] = [];
  const pageErrors: string[] = [];
  let alice: Page;
  let bob: Page;
  let conversationSid = '';

  beforeAll(async () => {
    [server, browser] = await Promise.all([startDemoServer(), launchBrowser()]);
  }, 120_000);

  afterAll(async () => {
    for (const context of contexts) await context.close().catch(() => undefined);
    await browser?.close();
    await server?.close();
  });

  async function signedIn(name: string, device: string, options: { agent?: boolean } = {}): Promise<Page> {
    const context = await browser.newContext({ viewport: WIDE, acceptDownloads: true });
    contexts.push(context);
    const page = await context.newPage();
    page.setDefaultTimeout(15_000);
    watchErrors(page, pageErrors);
    await page.goto(server.url);
    if (options.agent) await page.getByRole('radio', { name: 'Support agent' }).click();
    await page.getByTestId('identity-input').fill(name);
    await page.getByTestId('device-input').fill(device);
    await page.getByTestId('signin-submit').click();
    await page.getByTestId('connection').and(page.locator('[data-state="online"]')).waitFor();
    return page;
  }

  /**
   * Records, in order, every value `attribute` takes on the elements matching `selector` while
   * they are in the page, by their data-filename (several changes between two observer calls
   * are recovered from the records' old values).
   */
  async function recordStates(page: Page, selector: string, attribute: string): Promise<void> {
    await page.evaluate(
      ([selector, attribute]) => {
        const seen: Record<string, string[]> = ((window as unknown as { seen: Record<string, string[]> }).seen = {});
        const push = (el: Element, value: string | null) => {
          const list = (seen[el.getAttribute('data-filename') ?? ''] ??= []);
          if (value && list[list.length - 1] !== value) list.push(value);
        };
        new MutationObserver((records) => {
          const touched = new Set<Element>();
          for (const r of records) {
            if (r.type === 'attributes' && r.target instanceof Element && r.target.matches(selector!)) {
              push(r.target, r.oldValue);
              touched.add(r.target);
            }
            for (const n of r.addedNodes) {
              if (!(n instanceof Element)) continue;
              if (n.matches(selector!)) touched.add(n);
              n.querySelectorAll(selector!).forEach((el) => touched.add(el));
            }
          }
          for (const el of touched) push(el, el.getAttribute(attribute!));
        }).observe(document.body, { subtree: true, childList: true, attributes: true, attributeOldValue: true, attributeFilter: [attribute!] });
      },
      [selector, attribute],
    );
  }

  function recorded(page: Page): Promise<Record<string, string[]>> {
    return page.evaluate(() => (window as unknown as { seen: Record<string, string[]> }).seen);
  }

  async function download(page: Page, file: Locator): Promise<{ name: string; bytes: Buffer }> {
    const [saved] = await Promise.all([page.waitForEvent('download') as Promise<Download>, file.getByTestId('attachment-download').click()]);
    return { name: saved.suggestedFilename(), bytes: readFileSync((await saved.path())!) };
  }

  function fileOf(page: Page, name: string): Locator {
    return page.getByTestId('attachment').and(page.locator(`[data-filename="${name}"]`)).first();
  }

  /** Checks a received photo: the envelope's preview inline, then the verified photo itself. */
  async function expectPhoto(page: Page): Promise<void> {
    const photo = fileOf(page, 'summit.png');
    const preview = photo.getByTestId('attachment-preview');
    await preview.waitFor();
    const size = await preview.evaluate((img: HTMLImageElement) => img.decode().then(() => [img.naturalWidth, img.naturalHeight]));
    expect(Math.max(...size)).toBeLessThanOrEqual(96); // a thumbnail, not the photo
    expect(size[0]! / size[1]!).toBeCloseTo(480 / 320, 1);
    await expect.poll(() => photo.getAttribute('data-state')).toBe('done');
    const full = await photo.getByTestId('attachment-image').evaluate((img: HTMLImageElement) => img.decode().then(() => [img.naturalWidth, img.naturalHeight]));
    expect(full).toEqual([480, 320]);
  }

  async function expectPdfCard(page: Page): Promise<void> {
    const card = fileOf(page, 'itinerary.pdf');
    expect(await card.getAttribute('data-kind')).toBe('file');
    expect(await card.getByTestId('attachment-name').textContent()).toBe('itinerary.pdf');
    expect(await card.getByTestId('attachment-meta').textContent()).toBe(`PDF · ${PDF.length} bytes`);
  }

  it('sends a photo and a PDF with text and progress; the other side sees the preview at once, then the photo, and the PDF as a card', { timeout: 90_000 }, async () => {
    [alice, bob] = await Promise.all([signedIn('alice', 'Alice’s laptop'), signedIn('bob', 'Bob’s laptop')]);
    await alice.getByTestId('new-conversation').first().click();
    await alice.getByTestId('conversation-name').fill('Summit day');
    await alice.getByTestId('conversation-people').fill('bob');
    await alice.getByRole('button', { name: 'Create' }).click();
    await alice.getByTestId('conversation-title').filter({ hasText: 'Summit day' }).waitFor();
    conversationSid = decodeURIComponent(new URL(alice.url()).hash.replace('#/c/', ''));
    await bob.getByTestId('conversation').filter({ hasText: 'Summit day' }).click();
    await bob.getByTestId('composer-input').waitFor();

    await recordStates(alice, '[data-testid="upload"]', 'data-phase');
    await recordStates(bob, '[data-testid="attachment"]', 'data-state');
    await alice.getByTestId('file-input').setInputFiles([
      { name: 'summit.png', mimeType: 'image/png', buffer: PHOTO },
      { name: 'itinerary.pdf', mimeType: 'application/pdf', buffer: PDF },
    ]);
    expect(await alice.getByTestId('draft-file').evaluateAll((nodes) => nodes.map((n) => n.getAttribute('data-filename')))).toEqual(['summit.png', 'itinerary.pdf']);
    await alice.getByTestId('composer-input').fill('View from the top, and the plan for Saturday');
    await alice.getByTestId('composer-input').press('Enter');

    // Alice's own copy comes back opened and verified like bob's.
    const mine = alice.getByTestId('message').filter({ hasText: 'View from the top' }).and(alice.locator('[data-status="verified"]'));
    await mine.getByTestId('attachment').nth(1).waitFor();
    const phases = await recorded(alice);
    for (const name of ['summit.png', 'itinerary.pdf']) {
      const seen = phases[name] ?? [];
      expect(seen, name).toContain('encrypting');
      expect(seen, name).toContain('uploading');
      expect(seen.indexOf('encrypting'), name).toBeLessThan(seen.indexOf('uploading'));
    }

    const message = bob.getByTestId('message').filter({ hasText: 'View from the top' });
    await message.and(bob.locator('[data-status="verified"]')).waitFor();
    expect(await message.getByTestId('attachment').evaluateAll((nodes) => nodes.map((n) => [n.getAttribute('data-filename'), n.getAttribute('data-kind')]))).toEqual([
      ['summit.png', 'image'],
      ['itinerary.pdf', 'file'],
    ]);
    await expectPhoto(bob);
    await expectPdfCard(bob);
    expect((await recorded(bob))['summit.png']).toEqual(['downloading', 'done']); // fetched at once, being an image
    await expect.poll(() => bob.getByTestId('conversation').filter({ hasText: 'Summit day' }).getByTestId('preview').textContent()).toContain('alice: View from the top');
  });

  it('downloads both files byte for byte, with download progress', async () => {
    const pdf = await download(bob, fileOf(bob, 'itinerary.pdf'));
    expect(pdf.name).toBe('itinerary.pdf');
    expect(pdf.bytes.equals(PDF)).toBe(true);
    expect((await recorded(bob))['itinerary.pdf']).toEqual(['waiting', 'downloading', 'done']);
    const photo = await download(bob, fileOf(bob, 'summit.png'));
    expect(photo.name).toBe('summit.png');
    expect(photo.bytes.equals(PHOTO)).toBe(true);
    await bob.mouse.move(0, 0); // no hover tools in the picture
    await bob.getByTestId('composer-input').fill('Wow! See you at 8.');
    await bob.getByTestId('composer-input').press('Enter');
    await bob.getByTestId('message').filter({ hasText: 'See you at 8' }).and(bob.locator('[data-status="verified"]')).waitFor();
    await screenshot(bob, 'attachments');
  });

  it('shows in "What Twilio sees" opaque blobs only, and the relay stores no plaintext byte of either file', async () => {
    const stored = await server.store.messages(conversationSid, { direction: 'forward', limit: 100 });
    const media = stored.flatMap((m) => m.media ?? []);
    expect(media).toHaveLength(2);
    await bob.getByTestId('raw-toggle').click();
    await bob.getByTestId('raw-explainer').waitFor();
    const raw = await bob.getByTestId('raw-media').evaluateAll((nodes) => nodes.map((n) => ({ filename: n.getAttribute('data-filename'), contentType: n.getAttribute('data-content-type'), size: Number(n.getAttribute('data-size')) })));
    expect(raw).toEqual(media.map(({ filename, contentType, size }) => ({ filename, contentType, size })));
    for (const blob of raw) {
      expect(blob.contentType).toBe('application/octet-stream');
      expect(blob.filename).toMatch(/^[0-9a-f]{32}\.bin$/);
    }
    // Padded and framed: larger than either file, and neither file's size.
    expect(raw.map((b) => b.size).sort((a, b) => a - b)[0]).toBeGreaterThan(PDF.length);
    expect(raw.some((b) => b.size === PHOTO.length)).toBe(false);
    const timeline = (await bob.getByTestId('timeline').textContent()) ?? '';
    for (const name of ['summit.png', 'itinerary.pdf', 'View from the top']) expect(timeline).not.toContain(name);
    await bob.getByTestId('raw-media').first().scrollIntoViewIfNeeded();
    await screenshot(bob, 'attachments-what-twilio-sees');
    await bob.getByTestId('raw-toggle').click();
    await bob.getByTestId('message').first().waitFor();

    const looked = filesUnder(server.dataDir);
    expect(looked.some((path) => statSync(path).size > PHOTO.length)).toBe(true); // the photo's blob is among them
    for (const path of looked) {
      const bytes = readFileSync(path);
      for (const plain of [PHOTO, PDF]) for (const w of windows(plain)) expect(bytes.includes(w), path).toBe(false);
      expect(bytes.includes(PDF_TOKEN), path).toBe(false);
    }
  });

  it('lets a support agent added later open both files from history, verified', { timeout: 60_000 }, async () => {
    const agent = await signedIn('sam', 'Support desk', { agent: true });
    await alice.getByTestId('add-participant').click();
    await alice.getByTestId('participant-input').fill('agent-sam');
    await alice.getByRole('button', { name: 'Add', exact: true }).click();
    await alice.getByTestId('notice').filter({ hasText: 'agent-sam' }).waitFor();

    await agent.getByTestId('conversation').filter({ hasText: 'Summit day' }).click();
    const message = agent.getByTestId('message').filter({ hasText: 'View from the top' });
    await message.and(agent.locator('[data-status="verified"][data-via="history"]')).waitFor();
    await expectPhoto(agent);
    await expectPdfCard(agent);
    const pdf = await download(agent, fileOf(agent, 'itinerary.pdf'));
    expect(pdf.bytes.equals(PDF)).toBe(true);
    const photo = await download(agent, fileOf(agent, 'summit.png'));
    expect(photo.bytes.equals(PHOTO)).toBe(true);
    await screenshot(agent, 'attachments-agent-history');
  });

  it('shows a tampered file’s error on that file alone; nothing of it is saved', async () => {
    await alice.getByTestId('file-input').setInputFiles([{ name: 'contract.pdf', mimeType: 'application/pdf', buffer: makePdf('Sign here') }]);
    await alice.getByTestId('send').click();
    const card = fileOf(bob, 'contract.pdf');
    await card.waitFor();
    await expect.poll(() => bob.getByTestId('conversation').filter({ hasText: 'Summit day' }).getByTestId('preview').textContent()).toContain('alice: File: contract.pdf');
    // Someone with access to the relay's storage (or Twilio's) flips one byte of the blob.
    const stored = await server.store.messages(conversationSid, { direction: 'backwards', limit: 1 });
    const sid = stored[0]!.media![0]!.sid;
    const path = filesUnder(server.dataDir).find((p) => p.endsWith(sid))!;
    const bytes = readFileSync(path);
    bytes[bytes.length - 20]! ^= 1;
    writeFileSync(path, bytes);

    let saved = false;
    bob.on('download', () => (saved = true));
    await card.getByTestId('attachment-download').click();
    await card.getByTestId('attachment-error').waitFor();
    expect(await card.getByTestId('attachment-error').textContent()).toMatch(/could not be verified.*ATTACHMENT_[A-Z_]+/);
    expect(await card.getAttribute('data-state')).toBe('failed');
    expect(saved).toBe(false);
    // The rest of the conversation is untouched.
    expect(await fileOf(bob, 'summit.png').getAttribute('data-state')).toBe('done');
    await expect.poll(() => bob.getByTestId('message').and(bob.locator('[data-status="verified"]')).count()).toBeGreaterThanOrEqual(3);
    await card.scrollIntoViewIfNeeded();
    await screenshot(bob, 'attachment-tampered');
  });

  it('refuses a file too large (saying the limit) and too many files, before anything is sent', async () => {
    const before = await server.store.messages(conversationSid, { direction: 'forward', limit: 100 });
    const blobs = () => filesUnder(join(server.dataDir, 'media')).length; // the relay's uploads
    const blobsBefore = blobs();
    // 150,000,001 bytes made of references to one 1 MB blob: nothing that size is allocated. Dropped on the conversation.
    await alice.evaluate(() => {
      const mb = new Blob([new Uint8Array(1_000_000)]);
      const file = new File([...Array<Blob>(150).fill(mb), new Uint8Array(1)], 'video.mov', { type: 'video/quicktime' });
      const data = new DataTransfer();
      data.items.add(file);
      document.querySelector('[data-testid="timeline"]')!.dispatchEvent(new DragEvent('drop', { dataTransfer: data, bubbles: true, cancelable: true }));
    });
    const draft = alice.getByTestId('draft-file').and(alice.locator('[data-filename="video.mov"]'));
    expect(await draft.textContent()).toContain('150.0 MB');
    await alice.getByTestId('send').click();
    const refused = alice.getByTestId('not-sent').filter({ hasText: 'video.mov' });
    const error = refused.getByTestId('send-error');
    await error.waitFor();
    expect(await error.textContent()).toMatch(/File too large.*“video\.mov” is 150\.0 MB: a file can be at most 149\.\d MB.*Nothing was sent/);
    expect(await refused.getByRole('button', { name: 'Retry' }).count()).toBe(0);
    await screenshot(alice, 'attachment-too-large');
    await refused.getByRole('button', { name: 'Discard' }).click();

    const eleven = Array.from({ length: 11 }, (_, i) => ({ name: `note-${i + 1}.txt`, mimeType: 'text/plain', buffer: Buffer.from(`note ${i + 1}`) }));
    await alice.getByTestId('file-input').setInputFiles(eleven);
    await alice.getByTestId('send').click();
    const tooMany = alice.getByTestId('not-sent').getByTestId('send-error');
    await tooMany.waitFor();
    expect(await tooMany.textContent()).toMatch(/Too many files.*11 files in one message: a message can carry at most 10 files/);
    expect(await alice.getByTestId('not-sent').getByTestId('upload').allTextContents()).toEqual(eleven.map((f) => expect.stringContaining(`${f.name}`)));
    expect(await alice.getByTestId('not-sent').getByTestId('upload').evaluateAll((nodes) => nodes.map((n) => n.getAttribute('data-phase')))).toEqual(eleven.map(() => 'failed'));

    expect(await server.store.messages(conversationSid, { direction: 'forward', limit: 100 })).toHaveLength(before.length);
    expect(blobs()).toBe(blobsBefore); // nothing uploaded
  });

  it('ran without page errors', () => {
    expect(pageErrors).toEqual([]);
  });
});
