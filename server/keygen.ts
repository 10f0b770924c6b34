/**
 * `npx twilio-e2ee keygen` (server/cli.ts; `npm run keygen` in this repository): prints fresh
 * APP_KEY, ORG_KEY and LOG_KEY lines for .env (or a secret store), with the public keys that
 * clients pin as comments (the LogKey's verifier key is named for the log's origin: LOG_ORIGIN,
 * or the default from PUBLIC_URL, as in this environment), and where to read how to rotate keys
 * already in use. Keys only go to stdout, never to a file.
 */
import { generateAppKey, generateOrgKey, randomBytes, ready, seedToB64u, toB64u } from '../shared/index.js';
import { defaultLogOrigin, logKeyFor } from './config-log.js';

await ready();
const appKey = generateAppKey();
const orgKey = generateOrgKey();
const logSeed = randomBytes(32);
const publicUrl = process.env.PUBLIC_URL?.trim().replace(/\/+$/, '') || null;
const logOrigin = process.env.LOG_ORIGIN?.trim() || defaultLogOrigin(publicUrl);
process.stdout.write(
  [
    `# twilio-e2ee keys, generated ${new Date().toISOString()}. Keep APP_KEY, ORG_KEY and LOG_KEY secret.`,
    `# Clients pin the AppKey public key: appPublicKeys: ['${toB64u(appKey.publicKey)}'] (appKeyId ${appKey.appKeyId})`,
    `# and the organization key history is backed up to: orgPublicKeys: ['${toB64u(orgKey.keys.boxPublicKey)}']`,
    `# Clients and witnesses pin the card log's key (origin ${logOrigin}; set LOG_ORIGIN to the same): ${logKeyFor(logOrigin, logSeed).verifierKey}`,
    '# Replacing a key in use? Pin old and new in clients first, and move the old ORG_KEY to ORG_KEY_PREVIOUS',
    '# (then npx twilio-e2ee rewrap-history): docs/API.md "Rotating keys". The LOG_KEY is not rotated (docs/API.md "Card transparency log").',
    `APP_KEY=${seedToB64u(appKey.seed)}`,
    `ORG_KEY=${seedToB64u(orgKey.seed)}`,
    `LOG_KEY=${seedToB64u(logSeed)}`,
    '',
  ].join('\n'),
);
