import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../shared/errors.js';
import { migrateStore, openStore } from '../../server/store/index.js';
import { openSqliteStore, SQLITE_FILENAME } from '../../server/store/sqlite.js';
import { MIGRATIONS_TABLE } from '../../server/store/migrations.js';
import { ALL_VERSIONS, makeCard, makeConversation, makeMessage, registerOptions, uid } from './store.fixtures.js';
import { storeContract } from './store.contract.js';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'twilio-e2ee-store-'));
  dirs.push(dir);
  return dir;
}
afterAll(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

storeContract('sqlite', async () => openSqliteStore({ dataDir: await tempDir() }));

describe('sqlite store file', () => {
  it('reopens the same dataDir and finds the data, in a WAL file that passes integrity_check', async () => {
    const dataDir = await tempDir();
    const card = makeCard(uid('alice'));
    const conversation = makeConversation();

    const first = await openSqliteStore({ dataDir });
    await first.registerCard(card, registerOptions());
    await first.putSettingIfAbsent('org-card', 'v1');
    await first.createConversation(conversation);
    await first.appendMessage(makeMessage(conversation.sid));
    await first.close();

    const again = await openSqliteStore({ dataDir });
    expect(await again.getCard(card.id)).toEqual(card);
    expect(await again.getSetting('org-card')).toBe('v1');
    expect((await again.appendMessage(makeMessage(conversation.sid))).index).toBe(1);
    await again.close();

    const db = new Database(join(dataDir, SQLITE_FILENAME), { readonly: true });
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
      // Migrations ran once, not again on reopen.
      expect(db.prepare(`SELECT version FROM ${MIGRATIONS_TABLE} ORDER BY version`).pluck().all()).toEqual(ALL_VERSIONS);
    } finally {
      db.close();
    }
  });

  it('creates a missing data directory', async () => {
    const dataDir = join(await tempDir(), 'nested', 'data');
    const store = await openSqliteStore({ dataDir });
    await store.close();
    expect(existsSync(join(dataDir, SQLITE_FILENAME))).toBe(true);
  });

  it('names the data directory when the file cannot be opened (STORE_UNAVAILABLE)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'e2ee-sqlite-'));
    const blocked = join(dir, 'a-file');
    await writeFile(blocked, '');
    await expect(openStore({ dataDir: join(blocked, 'data') })).rejects.toMatchObject({
      code: ErrorCode.STORE_UNAVAILABLE,
      message: expect.stringContaining(`cannot open the SQLite database ${join(blocked, 'data', SQLITE_FILENAME)} (DATA_DIR`),
    });
    await rm(dir, { recursive: true, force: true });
  });

  it('opens an in-memory database', async () => {
    const store = await openSqliteStore({ filename: ':memory:' });
    await store.putSettingIfAbsent('k', 'v');
    expect(await store.getSetting('k')).toBe('v');
    await store.close();
  });

  it('two stores on one file behave as one', async () => {
    const dataDir = await tempDir();
    const [a, b] = await Promise.all([openSqliteStore({ dataDir }), openSqliteStore({ dataDir })]);
    try {
      const card = makeCard(uid('alice'));
      await a.registerCard(card, registerOptions());
      expect(await b.getCard(card.id)).toEqual(card);
      expect(await b.registerCard(makeCard(uid('bob'), { signKey: card.signKey }), registerOptions())).toEqual({
        ok: false,
        reason: 'KEY_IN_USE',
      });

      const conversation = makeConversation();
      await a.createConversation(conversation);
      const appended = await Promise.all(
        Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).appendMessage(makeMessage(conversation.sid))),
      );
      expect(appended.map((m) => m.index).sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('with migrate: false, refuses a file with pending migrations, and opens it once migrateStore ran them', async () => {
    const dataDir = await tempDir();
    await expect(openStore({ dataDir, migrate: false })).rejects.toMatchObject({
      code: ErrorCode.STORE_UNAVAILABLE,
      details: { pending: ALL_VERSIONS },
    });
    expect(await migrateStore({ dataDir })).toEqual({ kind: 'sqlite', applied: ALL_VERSIONS });
    expect(await migrateStore({ dataDir })).toEqual({ kind: 'sqlite', applied: [] });
    const store = await openStore({ dataDir, migrate: false });
    try {
      expect((await store.registerCard(makeCard(uid('alice')), registerOptions())).ok).toBe(true);
    } finally {
      await store.close();
    }
  });

  it('is what openStore chooses without a databaseUrl', async () => {
    const store = await openStore({ dataDir: await tempDir() });
    expect(store.kind).toBe('sqlite');
    await store.close();
  });
});
