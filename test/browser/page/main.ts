/**
 * The page the browser tests and the browser benchmark load: the client library as an app would
 * bundle it, with a few entry points on `window.e2eeTest` that tests call through
 * page.evaluate. Built by test/browser/page.ts.
 */
import type { Client } from '@twilio/conversations';
import { E2EEClient, IndexedDbKeyStore } from '../../../client/index.js';
import * as deviceKeys from '../../../client/webcrypto-device-keys.js';
import * as shared from '../../../shared/index.js';
import * as sodium from '../../../shared/sodium.js';

interface Received {
  conversationSid: string;
  author: string | null;
  body: string | null;
  status: string;
  senderCardId?: string;
}

let chat: Client | undefined;
const received: Received[] = [];

async function json(path: string, init?: RequestInit): Promise<Record<string, unknown>> {
  const response = await fetch(path, init);
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
  return (await response.json()) as Record<string, unknown>;
}

/** Signs `identity` in (demo login), registers this browser's device from `database`, connects. */
async function start(identity: string, database: string): Promise<{ cardId: string; card: unknown }> {
  const { token } = await json('/v1/session', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ identity }) });
  const { publicKey } = await json('/v1/app-key');
  const e2ee = await E2EEClient.create({
    serverUrl: location.origin,
    getAuthToken: () => token as string,
    appPublicKeys: [publicKey as string],
    keyStore: new IndexedDbKeyStore({ name: database }),
  });
  const card = await e2ee.register();
  chat = await e2ee.connect();
  chat.on('messageAdded', (m) => received.push({ conversationSid: m.conversation.sid, author: m.author, body: m.body, status: m.e2ee?.status ?? 'none', senderCardId: m.e2ee?.senderCardId }));
  return { cardId: card.id, card };
}

async function send(conversationSid: string, body: string): Promise<void> {
  await (await chat!.getConversationBySid(conversationSid)).sendMessage(body);
}

/**
 * What same-origin script finds in the key store's database: per device row, its scheme, which
 * members are CryptoKeys (extractable or not, and whether any export format works), and every
 * byte array it holds (b64u); and how many keys the wrapping-key store holds.
 */
async function inspectDatabase(database: string): Promise<unknown> {
  const db = await new Promise<IDBDatabase>((resolve, reject) => {
    const r = indexedDB.open(database);
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
  const all = (store: string) =>
    new Promise<unknown[]>((resolve, reject) => {
      const r = db.transaction(store).objectStore(store).getAll();
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
  const rows = (await all('devices')) as Array<Record<string, unknown>>;
  const wrappingKeys = (await all('keys')).length;
  db.close();
  const out = [];
  for (const row of rows) {
    const cryptoKeys: Record<string, { type: string; algorithm: string; extractable: boolean; exported: string[] }> = {};
    const bytes: string[] = [];
    const walk = (value: unknown, name: string): void => {
      if (value instanceof CryptoKey) cryptoKeys[name] = { type: value.type, algorithm: value.algorithm.name, extractable: value.extractable, exported: [] };
      else if (value instanceof Uint8Array || value instanceof ArrayBuffer) bytes.push(shared.toB64u(new Uint8Array(value)));
      else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) walk(v, k);
    };
    walk(row, '');
    for (const [name, info] of Object.entries(cryptoKeys)) {
      for (const format of ['pkcs8', 'jwk', 'raw', 'spki'] as const) {
        try {
          await crypto.subtle.exportKey(format, row[name] as CryptoKey);
          info.exported.push(format);
        } catch {
          // refused: what a non-extractable key must do
        }
      }
    }
    out.push({ identity: row.identity, scheme: row.scheme ?? null, members: Object.keys(row).sort(), cryptoKeys, bytes });
  }
  return { rows: out, wrappingKeys };
}

/** Rewrites a device row as the store wrote it before rows recorded their scheme. */
async function dropScheme(database: string, identity: string): Promise<void> {
  const db = await new Promise<IDBDatabase>((resolve) => {
    const r = indexedDB.open(database);
    r.onsuccess = () => resolve(r.result);
  });
  await new Promise<void>((resolve, reject) => {
    const tx = db.transaction('devices', 'readwrite');
    const store = tx.objectStore('devices');
    const r = store.get(identity);
    r.onsuccess = () => {
      const { scheme: _scheme, ...old } = r.result as Record<string, unknown>;
      store.put(old, identity);
    };
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
  });
  db.close();
}

/** Signs with the stored device key, as injected script could while the page is open. */
async function signWithStoredKey(database: string, identity: string, message: string): Promise<string> {
  const record = await new IndexedDbKeyStore({ name: database }).loadDevice(identity);
  return shared.toB64u(await deviceKeys.deviceKeysOf(record!).sign(shared.utf8(message)));
}

Object.assign(globalThis, {
  e2eeTest: { start, send, received, inspectDatabase, dropScheme, signWithStoredKey, shared, sodium, deviceKeys },
});
document.body.dataset.ready = 'true';
