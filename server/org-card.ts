/**
 * The OrgCard: the organization's card v1 (identity `org:<name>`, device `org`), made from the
 * OrgKey and countersigned with the AppKey. Clients wrap history backups for its box key.
 *
 * Its snapshot holds a createdAt, so two instances making it independently would serve different
 * bytes (and ids). The first instance stores it as a setting and every instance serves that one.
 * The setting name includes the keys and the name, so rotating ORG_KEY or APP_KEY (or renaming
 * the org) makes a new card instead of serving one that no longer matches.
 */
import {
  ORG_IDENTITY_PREFIX,
  countersignCard,
  createCardRequest,
  parseCardRequest,
  toB64u,
  trustAppKeys,
  verifyCard,
  type AppKey,
  type CardWire,
  type OrgKey,
} from '../shared/index.js';
import type { Store } from './store/types.js';

export const ORG_DEVICE_ID = 'org';

export function orgIdentity(orgName: string): string {
  return `${ORG_IDENTITY_PREFIX}${orgName}`;
}

function settingKey(appKey: AppKey, orgKey: OrgKey, orgName: string): string {
  return `org-card:v1:${appKey.appKeyId}:${toB64u(orgKey.keys.signPublicKey)}:${orgName}`;
}

/** The OrgCard as all instances serve it: made and stored by the first one, read by the rest. */
export async function loadOrgCard(store: Store, appKey: AppKey, orgKey: OrgKey, orgName: string, now = Math.floor(Date.now() / 1000)): Promise<CardWire> {
  const identity = orgIdentity(orgName);
  const request = createCardRequest(orgKey.keys, { identity, deviceId: ORG_DEVICE_ID, deviceName: orgName, createdAt: now });
  const made = JSON.stringify(countersignCard(parseCardRequest(request), appKey));
  const stored = await store.putSettingIfAbsent(settingKey(appKey, orgKey, orgName), made);
  // Whatever is stored must still be a valid card of these keys: never serve a card we cannot stand behind.
  const card = verifyCard(JSON.parse(stored), { trustedAppKeys: trustAppKeys([toB64u(appKey.publicKey)]), identity });
  if (toB64u(card.boxPublicKey) !== toB64u(orgKey.keys.boxPublicKey)) throw new Error('stored OrgCard does not match ORG_KEY');
  return card.wire;
}
