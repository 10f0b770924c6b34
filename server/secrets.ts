/**
 * Secrets the server derives from the AppKey seed, so that every instance holding the same
 * APP_KEY agrees on them without any further configuration or shared state.
 *
 * Each derivation has its own versioned label: a relay token can never pass as a session token
 * (or the reverse) because they are signed with unrelated keys.
 */
import { utf8, type AppKey } from '../shared/index.js';
import { blake2b256 } from '../shared/sodium.js';

/** HS256 key of demo-mode session tokens when AUTH_JWT_SECRET is not set. */
export const DEMO_SESSION_SECRET_LABEL = utf8('twilio-e2ee/v1/server/demo-session-secret');
/** HS256 key of local relay tokens (server/relay-token.ts). */
export const RELAY_TOKEN_SECRET_LABEL = utf8('twilio-e2ee/v1/server/relay-token-secret');
/** HMAC-SHA256 key of the local relay's media download URLs (server/relay/media.ts). */
export const RELAY_MEDIA_URL_SECRET_LABEL = utf8('twilio-e2ee/v1/server/relay-media-url-secret');

/** BLAKE2b-256(key = AppKey seed, msg = label): 32 bytes, independent per label. */
export function deriveAppSecret(appKey: AppKey, label: Uint8Array): Uint8Array {
  return blake2b256(label, appKey.seed);
}
