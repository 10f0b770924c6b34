/**
 * `npx twilio-e2ee keygen` (server/cli.ts; `npm run keygen` in this repository): prints fresh
 * APP_KEY and ORG_KEY lines for .env (or a secret store), with the AppKey and OrgKey public keys
 * that clients pin as comments, and where to read how to rotate keys already in use. Keys only go
 * to stdout, never to a file.
 */
import { generateAppKey, generateOrgKey, ready, seedToB64u, toB64u } from '../shared/index.js';

await ready();
const appKey = generateAppKey();
const orgKey = generateOrgKey();
process.stdout.write(
  [
    `# twilio-e2ee keys, generated ${new Date().toISOString()}. Keep APP_KEY and ORG_KEY secret.`,
    `# Clients pin the AppKey public key: appPublicKeys: ['${toB64u(appKey.publicKey)}'] (appKeyId ${appKey.appKeyId})`,
    `# and the organization key history is backed up to: orgPublicKeys: ['${toB64u(orgKey.keys.boxPublicKey)}']`,
    '# Replacing a key in use? Pin old and new in clients first, and move the old ORG_KEY to ORG_KEY_PREVIOUS',
    '# (then npx twilio-e2ee rewrap-history): docs/API.md "Rotating keys".',
    `APP_KEY=${seedToB64u(appKey.seed)}`,
    `ORG_KEY=${seedToB64u(orgKey.seed)}`,
    '',
  ].join('\n'),
);
