/**
 * Domain-separation labels, versions and byte sizes of the formats, copied from docs/PROTOCOL.md
 * (limits are in limits.ts). Every label is versioned ("v1"): a later format gets new labels, so
 * a signature or key made for one format can never be taken for another.
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

/**
 * Associated data prefix of every attachment chunk (followed by the 16-byte file id): binds each
 * chunk to this format and to its file (docs/PROTOCOL.md section 16).
 */
export const ATTACHMENT_LABEL = utf8('twilio-e2ee/v1/attachment');
/** First bytes of an encrypted attachment blob: "e2eeatt" and the format version. */
export const ATTACHMENT_MAGIC = new Uint8Array([0x65, 0x32, 0x65, 0x65, 0x61, 0x74, 0x74, 0x01]);
export const ATTACHMENT_VERSION = 1;
/** Plaintext bytes per chunk: large enough that the 32 bytes of id and tag per chunk cost 0.05%. */
export const ATTACHMENT_CHUNK_BYTES = 64 * 1024;
export const ATTACHMENT_FILE_ID_BYTES = 16;

/** Text form prefix of an envelope in a Twilio message body. */
export const ENVELOPE_PREFIX = 'e2ee1.';

export const CARD_VERSION = 1;
export const ENVELOPE_VERSION = 1;

/** Plaintext (signature || payload || padding) is padded to a multiple of this, hiding exact lengths. */
export const PADDING_BLOCK = 128;

export const KEY_BYTES = 32;
export const SIGNATURE_BYTES = 64;
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
/**
 * Version of the safety-number computation, hashed into every fingerprint (as a big-endian u16).
 * A later scheme gets a new version, so its numbers never match this one's by accident, and an
 * app that stores verified numbers can tell which scheme made them. Version 2 commits to each
 * identity's chain head in the card transparency log as well as to its cards (section 8).
 */
export const SAFETY_NUMBER_VERSION = 2;
/** Version 1: the cards only; clients without a pinned log key, and the OrgCard's fingerprint. */
export const SAFETY_NUMBER_VERSION_CARDS_ONLY = 1;

// ---- The card transparency log (docs/PROTOCOL.md section 17)

/** RFC 6962 domain separation of the tree hashes: leaf = SHA-256(0x00 || leaf), node = SHA-256(0x01 || left || right). */
export const MERKLE_LEAF_PREFIX = 0x00;
export const MERKLE_NODE_PREFIX = 0x01;
/** SHA-256's output: every tree hash, root and proof hash. */
export const MERKLE_HASH_BYTES = 32;
/** c2sp.org/signed-note signature types, hashed into a key's 4-byte key ID: a plain Ed25519 note signature. */
export const NOTE_TYPE_ED25519 = 0x01;
/** c2sp.org/tlog-cosignature: a timestamped Ed25519 witness cosignature (cosignature/v1). */
export const NOTE_TYPE_COSIGNATURE_V1 = 0x04;
/** First line of the message a cosignature/v1 signs, before "time <t>\n" and the checkpoint. */
export const COSIGNATURE_V1_HEADER = 'cosignature/v1\n';
/** Prefix of a card event's log leaf (17.5): versions the leaf format apart from any other use of the tree. */
export const LOG_EVENT_LABEL = utf8('twilio-e2ee/v1/log-event\n');
