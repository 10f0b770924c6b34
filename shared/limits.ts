/**
 * Limits and reserved names that the client and the card service must agree on, each with its
 * reason, in one place (docs/PROTOCOL.md section 10, docs/API.md). Limits only one side enforces
 * and the other never needs to know live with that side (server/limits.ts, RELAY_LIMITS).
 */

// ---- Cards (docs/PROTOCOL.md section 4)

/** Snapshots are small JSON objects; the cap bounds parsing work and storage per card. */
export const MAX_SNAPSHOT_BYTES = 2048;
/** Twilio's identity limit. */
export const MAX_IDENTITY_CHARS = 256;
/** A device id is an identifier, not a label: short enough for URLs and logs. */
export const MAX_DEVICE_ID_CHARS = 64;
/** A device name is a label for people. */
export const MAX_DEVICE_NAME_CHARS = 128;

/**
 * Identities with this prefix are reserved for organization cards (the OrgCard is `org:<name>`):
 * the service refuses sessions and cards for them, and the client accepts an OrgCard only with it.
 */
export const ORG_IDENTITY_PREFIX = 'org:';

// ---- Envelopes (docs/PROTOCOL.md section 5)

/** Twilio Conversations refuses a message body longer than 32 KB (32,768 characters). */
export const MAX_ENVELOPE_TEXT_CHARS = 32 * 1024;
/**
 * Twilio refuses message attributes above 4 KB. The clear attributes Twilio holds and the
 * encrypted attributes in the payload are each held to it, so an app meets the same limit as
 * without encryption (ATTRIBUTES_TOO_LARGE, before anything is sent; never truncated).
 */
export const MAX_ATTRIBUTES_BYTES = 4 * 1024;
/** The u16 recipient count is capped well below 65535 to bound parsing work. */
export const MAX_RECIPIENTS = 4096;

// ---- Attachments (docs/PROTOCOL.md section 16)

/**
 * Twilio refuses media above 150 MB; counted in decimal megabytes, so the encrypted blob fits
 * whichever way Twilio counts. Applies to the blob (header, chunks, tags and padding included).
 */
export const MAX_ATTACHMENT_BLOB_BYTES = 150_000_000;
/** Filenames are labels for people; 255 is what common file systems take. */
export const MAX_ATTACHMENT_FILENAME_CHARS = 255;
/** type/subtype, RFC 6838 section 4.2 allows 127 characters each. */
export const MAX_ATTACHMENT_CONTENT_TYPE_CHARS = 255;
/**
 * A preview travels inside the envelope, which must fit Twilio's 32 KB body with its recipients:
 * a thumbnail of a few KB. The sender drops previews (never the message) when they do not fit.
 */
export const MAX_ATTACHMENT_PREVIEW_BYTES = 8 * 1024;
/** A preview's width and height, pixels: the default thumbnail's longest side is 96. */
export const MAX_ATTACHMENT_PREVIEW_SIDE = 512;
/** Files per message where the transport does not say (Twilio's mediaAttachmentsCountLimit). */
export const DEFAULT_ATTACHMENTS_PER_MESSAGE = 10;

// ---- Clocks

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

/**
 * Message ids remembered per conversation for replay detection (oldest forgotten first). An older
 * copy re-posted later still fails the sentAt check (MAX_SENT_AT_SKEW_MS); the window only has to
 * cover the messages a device may see within that time.
 */
export const REPLAY_WINDOW_MESSAGES = 1_000;

// ---- The card service's HTTP API (docs/API.md)

/**
 * Identities per GET /v1/cards: a large group's lookup fits in one request, and a query stays
 * cheap. The client splits larger lookups into batches of this size.
 */
export const MAX_LOOKUP_IDENTITIES = 100;

/**
 * Messages per GET /v1/history/:conversationSid page (the `limit` query's maximum): each costs two
 * X25519 operations on the service. The client asks for full pages; the service may still end a
 * page early at its byte cap (`truncated`).
 */
export const MAX_HISTORY_PAGE_MESSAGES = 500;

/**
 * How long the client reuses looked-up active cards, ms (the `cardCacheTtlMs` option's default):
 * short, so a revocation reaches senders soon.
 */
export const DEFAULT_CARD_CACHE_TTL_MS = 5_000;

// ---- The card transparency log (docs/PROTOCOL.md section 17)

/**
 * Signatures per signed note: c2sp.org/signed-note requires accepting at least 16, and a
 * checkpoint carries the log's signature and a few witnesses'. Bounds the work per note.
 */
export const MAX_NOTE_SIGNATURES = 16;
/**
 * Bytes per signed note: 16 signature lines of the largest kind in use (ML-DSA-44 cosignatures,
 * about 3.3 KB each, which other witnesses may add and a verifier skips) with room to spare.
 */
export const MAX_NOTE_BYTES = 64 * 1024;
/**
 * How far ahead of the verifier's clock a witness cosignature's timestamp may be, seconds:
 * clocks drift, but a cosignature from the future is not believed (c2sp.org/tlog-cosignature).
 */
export const COSIGNATURE_MAX_SKEW_SECONDS = 600;
