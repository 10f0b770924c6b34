/**
 * Domain-separation labels and limits, copied from docs/PROTOCOL.md. Every label is versioned
 * ("v1"): a later format gets new labels, so a signature or key made for one format can never be
 * taken for another.
 */
import { utf8 } from './encoding.js';

/** Prefix of a card self-signature: Ed25519(device key, label || snapshot). */
export const CARD_SELF_LABEL = utf8('twilio-e2ee/v1/card-self\n');
/** Prefix of a card countersignature: Ed25519(AppKey, label || snapshot || selfSignature). */
export const CARD_APP_LABEL = utf8('twilio-e2ee/v1/card-app\n');
/** Message of the key commitment: BLAKE2b-256(key = CEK, msg = label). */
export const COMMIT_LABEL = utf8('twilio-e2ee/v1/commit');
/** Prefix of the per-recipient KEK derivation input (followed by E || R). */
export const WRAP_LABEL = utf8('twilio-e2ee/v1/wrap');
/** Prefix of the rewrap KEK derivation input (followed by E' || R || BLAKE2b-256(envelope)). */
export const REWRAP_LABEL = utf8('twilio-e2ee/v1/rewrap');
/** Prefix of the message signature input (followed by BLAKE2b-256(header) || payload). */
export const MESSAGE_LABEL = utf8('twilio-e2ee/v1/msg\n');
/**
 * Prefix of a device proof (X-E2EE-Device header): Ed25519(device key, label || method "\n" path
 * "\n" timestamp "\n" cardId "\n" || BLAKE2b-256(body)). Binds a request to an active card.
 */
export const DEVICE_PROOF_LABEL = utf8('twilio-e2ee/v1/device-proof\n');
/** Derivation labels for the OrgKey's two key pairs from its one seed (not in the wire format). */
export const ORG_SIGN_LABEL = utf8('twilio-e2ee/v1/org-sign');
export const ORG_BOX_LABEL = utf8('twilio-e2ee/v1/org-box');

/** Text form prefix of an envelope in a Twilio message body. */
export const ENVELOPE_PREFIX = 'e2ee1.';

export const CARD_VERSION = 1;
export const ENVELOPE_VERSION = 1;

/** Snapshots are small JSON objects; the cap bounds parsing work and storage per card. */
export const MAX_SNAPSHOT_BYTES = 2048;
export const MAX_IDENTITY_CHARS = 256; // Twilio's identity limit
export const MAX_DEVICE_ID_CHARS = 64;
export const MAX_DEVICE_NAME_CHARS = 128;

/** Twilio Conversations refuses a message body longer than 32 KB (32,768 characters). */
export const MAX_ENVELOPE_TEXT_CHARS = 32 * 1024;
/** The u16 recipient count is capped well below 65535 to bound parsing work. */
export const MAX_RECIPIENTS = 4096;

/**
 * Clock skew tolerated between a device and the service, seconds. A card registration's createdAt
 * must be this close to the server clock (it bounds how long a captured-but-unregistered request
 * stays usable); a card revoked further than this in the future is not believed.
 */
export const CARD_MAX_CLOCK_SKEW_SECONDS = 600;

/**
 * How far a device proof's timestamp may lie from the server clock, seconds. A captured proof is
 * replayable only within this window, and only for the very same method, path and body.
 */
export const DEVICE_PROOF_MAX_SKEW_SECONDS = 300;

/**
 * How far a message's signed sentAt may lie outside the transport's own timestamps (dateCreated
 * to dateUpdated), ms: devices' clocks drift, but an old envelope re-posted as a new message is
 * minutes, days or years off, and is refused (ENVELOPE_SENT_AT_MISMATCH).
 */
export const MAX_SENT_AT_SKEW_MS = 10 * 60_000;
/** Plaintext (signature || payload || padding) is padded to a multiple of this, hiding exact lengths. */
export const PADDING_BLOCK = 128;

export const KEY_BYTES = 32;
export const SIGNATURE_BYTES = 64;
export const CARD_ID_BYTES = 32;
export const KEY_ID_BYTES = 8;
export const APP_KEY_ID_BYTES = 8;
export const WRAPPED_KEY_BYTES = 48; // 32-byte CEK + 16-byte Poly1305 tag
export const RECIPIENT_SLOT_BYTES = KEY_ID_BYTES + WRAPPED_KEY_BYTES;
export const ENVELOPE_NONCE_BYTES = 24; // XChaCha20: random nonces are safe at this size
export const AEAD_TAG_BYTES = 16;
/** Offset of the recipient slots: version(1) flags(1) senderCardId(32) E(32) commitment(32) n(2). */
export const RECIPIENTS_OFFSET = 100;
export const REWRAP_BYTES = KEY_BYTES + WRAPPED_KEY_BYTES;

/** Prefix of a safety-number fingerprint input (not on the wire; compared by people). */
export const SAFETY_NUMBER_LABEL = utf8('twilio-e2ee/v1/safety-number\n');
/** Hash iterations per side: makes finding another key set with the same 30 digits costlier. */
export const SAFETY_NUMBER_ITERATIONS = 1024;
