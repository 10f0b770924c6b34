/**
 * The error catalogue: every code the core, the card service, the local relay, the server's
 * configuration and the client use, each with its HTTP status, and the one error class that
 * carries them. Apps and the server branch on `code`, never on `message`. The codes and statuses
 * are listed in docs/PROTOCOL.md ("Error codes") and docs/API.md ("Errors"); a test checks that
 * those tables and this catalogue agree.
 *
 * A code's status is what the card service answers when the error reaches HTTP. Codes the
 * service never sends (client-side refusals, relay answers) get the status it would use.
 */

interface ErrorSpec {
  /** The HTTP status of an answer with this code. */
  status: number;
}

/** One entry per code; `ErrorCode` and `errorStatus` are both made from it, so they cannot drift. */
function defineCatalogue<const T extends Record<string, ErrorSpec>>(specs: T): { readonly [K in keyof T]: K } {
  return Object.fromEntries(Object.keys(specs).map((code) => [code, code])) as { readonly [K in keyof T]: K };
}

const CATALOGUE = {
  // ---- The core (shared/): arguments, encodings, cards, envelopes, rewraps. The caller's fault: 400.
  /** An argument given to a function of the core is of the wrong type or length. */
  INVALID_ARGUMENT: { status: 400 },
  /** A b64u or hex string is not canonical (padding, wrong alphabet, stray bits, upper case). */
  ENCODING_INVALID: { status: 400 },
  CARD_MALFORMED: { status: 400 },
  CARD_TOO_LARGE: { status: 400 },
  CARD_ID_MISMATCH: { status: 400 },
  CARD_SELF_SIGNATURE_INVALID: { status: 400 },
  CARD_APP_SIGNATURE_INVALID: { status: 400 },
  CARD_APP_KEY_UNTRUSTED: { status: 400 },
  CARD_IDENTITY_MISMATCH: { status: 400 },
  CARD_REVOKED: { status: 400 },
  CARD_WEAK_KEY: { status: 400 },
  /**
   * The card's lifetime cannot be true: revoked at or before its creation (it was never active),
   * or revoked at a time still in the future. Such a card never vouches for a message.
   */
  CARD_LIFETIME_INVALID: { status: 400 },
  ENVELOPE_MALFORMED: { status: 400 },
  ENVELOPE_UNSUPPORTED_VERSION: { status: 400 },
  ENVELOPE_TOO_LARGE: { status: 400 },
  ENVELOPE_TOO_MANY_RECIPIENTS: { status: 400 },
  ENVELOPE_NOT_FOR_ME: { status: 400 },
  ENVELOPE_COMMITMENT_MISMATCH: { status: 400 },
  ENVELOPE_DECRYPT_FAILED: { status: 400 },
  ENVELOPE_SIGNATURE_INVALID: { status: 400 },
  ENVELOPE_SENDER_CARD_MISMATCH: { status: 400 },
  ENVELOPE_SENDER_NOT_AUTHOR: { status: 400 },
  ENVELOPE_SENDER_REVOKED: { status: 400 },
  ENVELOPE_CONVERSATION_MISMATCH: { status: 400 },
  ENVELOPE_REPLAY: { status: 400 },
  /** The signed sentAt is further from the transport's timestamps than the allowed clock skew. */
  ENVELOPE_SENT_AT_MISMATCH: { status: 400 },
  /** An edited message went back to an earlier version (an older signed sentAt) than one already shown. */
  ENVELOPE_ROLLBACK: { status: 400 },
  /** The clear attributes Twilio holds for the message are not the ones the sender signed. */
  ENVELOPE_ATTRIBUTES_MISMATCH: { status: 400 },
  /** An edit is bound to another message than the one it replaces (its signed editOf). */
  ENVELOPE_EDIT_MISMATCH: { status: 400 },
  REWRAP_MALFORMED: { status: 400 },
  // Attachments (docs/PROTOCOL.md section 16): the blob or its metadata is not what the sender made.
  /** Attachment metadata (from the envelope) is not canonical: a member missing, of the wrong type, or inconsistent. */
  ATTACHMENT_METADATA_INVALID: { status: 400 },
  /** The encrypted blob would exceed Twilio's media limit (MAX_ATTACHMENT_BLOB_BYTES). */
  ATTACHMENT_TOO_LARGE: { status: 413 },
  /** The blob does not start with the attachment magic and version. */
  ATTACHMENT_MALFORMED: { status: 400 },
  /** A chunk does not open under its own position or a nearby one: altered, or the wrong key. */
  ATTACHMENT_CHUNK_TAMPERED: { status: 400 },
  /** A chunk carries another file's id (spliced in from another attachment). */
  ATTACHMENT_CHUNK_FOREIGN: { status: 400 },
  /** A chunk is missing: the chunk found opens under a later position. */
  ATTACHMENT_CHUNK_MISSING: { status: 400 },
  /** Chunks are out of order: the chunk found opens under an earlier position, or its own turns up later. */
  ATTACHMENT_CHUNK_REORDERED: { status: 400 },
  /** The blob ends before its last chunk. */
  ATTACHMENT_TRUNCATED: { status: 400 },
  /** Bytes follow the last chunk. */
  ATTACHMENT_EXTENDED: { status: 400 },
  /** Every chunk opened, but the blob is not the one whose digest the sender signed. */
  ATTACHMENT_DIGEST_MISMATCH: { status: 400 },
  /** The padding after the content is not all zero bytes. */
  ATTACHMENT_PADDING_INVALID: { status: 400 },
  // The card transparency log (docs/PROTOCOL.md section 17): proofs, signed notes, checkpoints, card events.
  /** An inclusion proof does not prove the leaf at that index of the tree of that size and root. */
  LOG_INCLUSION_INVALID: { status: 400 },
  /** A consistency proof does not prove that the newer tree extends the older one (or the sizes go backwards). */
  LOG_CONSISTENCY_INVALID: { status: 400 },
  /** A card event leaf is not the canonical encoding (kind, numbers, previous hash, identity). */
  LOG_EVENT_MALFORMED: { status: 400 },
  /** An identity's events do not chain: a gap or repeat in the sequence, a wrong previous hash, a card registered twice or revoked unregistered. */
  LOG_CHAIN_INVALID: { status: 400 },
  /** A signed note breaks the format: text, control characters, signature lines, key names, size. */
  NOTE_MALFORMED: { status: 400 },
  /** A note verifier or signer key (vkey, skey) is malformed, of an unknown type, or its key ID does not match. */
  NOTE_KEY_INVALID: { status: 400 },
  /** A signature from a known key (name and key ID) does not verify: the whole note is refused. */
  NOTE_SIGNATURE_INVALID: { status: 400 },
  /** No signature from a key the verifier was given (or not from the one it requires). */
  NOTE_UNVERIFIED: { status: 400 },
  /** A note's text is not a checkpoint: origin, tree size, root hash or extension lines. */
  CHECKPOINT_MALFORMED: { status: 400 },
  /** The checkpoint is for another log (its origin line is not the one expected). */
  CHECKPOINT_ORIGIN_MISMATCH: { status: 400 },
  /** A cosignature's timestamp lies in the future beyond the allowed skew, or past 2^63 - 1. */
  COSIGNATURE_TIME_INVALID: { status: 400 },

  // ---- The card service's HTTP API (docs/API.md "Errors").
  /** Malformed JSON, a body or query that does not match the route schema, HTTP the server cannot take. */
  BAD_REQUEST: { status: 400 },
  /** Missing, malformed, expired or wrongly signed bearer token (or relay token). */
  UNAUTHORIZED: { status: 401 },
  /** Authenticated, but not allowed (not the owner, not a participant). */
  FORBIDDEN: { status: 403 },
  NOT_FOUND: { status: 404 },
  PAYLOAD_TOO_LARGE: { status: 413 },
  UNSUPPORTED_MEDIA_TYPE: { status: 415 },
  /** Over a rate limit (HTTP or relay), or too many history pages waiting. */
  RATE_LIMITED: { status: 429 },
  /** The card's createdAt is more than 10 minutes from the server clock. */
  CARD_STALE: { status: 400 },
  CARD_EXISTS: { status: 409 },
  /** The card's sign or box key is already registered. */
  KEY_IN_USE: { status: 409 },
  /** The identity already has the maximum of active cards. */
  TOO_MANY_CARDS: { status: 409 },
  /** The route needs an X-E2EE-Device proof. */
  DEVICE_PROOF_REQUIRED: { status: 401 },
  /** Malformed X-E2EE-Device header, unknown card or wrong signature. */
  DEVICE_PROOF_INVALID: { status: 401 },
  /** The proof's timestamp is too far from the server clock. */
  DEVICE_PROOF_EXPIRED: { status: 401 },
  /** The proof's card is revoked. */
  DEVICE_REVOKED: { status: 403 },
  /** The identity has the maximum of pending device requests. */
  TOO_MANY_PENDING_DEVICES: { status: 409 },
  /**
   * This instance holds no OrgKey (history routes and GET /v1/org-card alike). 503: the instance
   * cannot serve it, though another (the history service) may; the client takes it as final
   * (no backups are made or retried), since retrying the same deployment would never end.
   */
  HISTORY_DISABLED: { status: 503 },
  /** The caller is not a participant of the conversation. */
  NOT_PARTICIPANT: { status: 403 },
  /**
   * The organization's own history access rule (the plugin's `canReadHistory`) failed or gave no
   * true/false answer: no history was served. 503: try again later.
   */
  HISTORY_ACCESS_CHECK_FAILED: { status: 503 },
  /** The posted envelope or index is not the conversation's message. */
  HISTORY_MISMATCH: { status: 400 },
  /** A history copy may be deleted only once its message is gone from the conversation. */
  MESSAGE_NOT_REMOVED: { status: 409 },
  /** The envelope names a card the directory never issued. */
  SENDER_CARD_UNKNOWN: { status: 400 },
  /** Pre-event webhook: a message body that is not an envelope. */
  ENVELOPE_REQUIRED: { status: 403 },
  /** Twilio did not answer as expected: try again. */
  TWILIO_UNAVAILABLE: { status: 503 },
  /** The store does not answer (/readyz). */
  STORE_UNAVAILABLE: { status: 503 },
  /** Anything unexpected: the details go to the log, never to the client. */
  INTERNAL: { status: 500 },

  // ---- The local relay's answers (besides BAD_REQUEST, UNAUTHORIZED, FORBIDDEN, NOT_FOUND, RATE_LIMITED, INTERNAL).
  /** The session's relay token expired: send `updateToken`. */
  TOKEN_EXPIRED: { status: 401 },
  /** A conversation with that uniqueName exists. */
  CONFLICT: { status: 409 },
  TOO_MANY_PARTICIPANTS: { status: 409 },
  ATTRIBUTES_TOO_LARGE: { status: 413 },
  ATTRIBUTES_TOO_DEEP: { status: 400 },

  // ---- The server's configuration.
  /** The environment is not a valid configuration: `details.problems` has one line per variable at fault. */
  CONFIG_INVALID: { status: 500 },

  // ---- Client-side refusals (the wrapper around @twilio/conversations and the relay client).
  /** Some participants have no registered device; `details.identities` lists them. Nothing was sent. */
  NO_CARDS: { status: 409 },
  /** A participant is not a chat user (SMS, WhatsApp, email): it cannot decrypt. Nothing was sent. */
  NON_CHAT_PARTICIPANT: { status: 409 },
  /** Only text bodies can be encrypted (media and email content are refused). */
  UNSUPPORTED_CONTENT: { status: 415 },
  /** More files in one message than the conversation's mediaAttachmentsCountLimit (Twilio: 10). Nothing was uploaded. */
  TOO_MANY_ATTACHMENTS: { status: 413 },
  /** An attachment's blob could not be downloaded: no temporary URL, or the media service answered an error (`details.status`). */
  ATTACHMENT_UNAVAILABLE: { status: 502 },
  /** The message's media hold no blob named for this attachment, or more than one. */
  ATTACHMENT_MEDIA_MISMATCH: { status: 400 },
  /** Only the author may edit a message end-to-end (its body and attributes are signed by the author). */
  NOT_MESSAGE_AUTHOR: { status: 403 },
  /** This device has no card yet: call register() first. */
  DEVICE_NOT_REGISTERED: { status: 409 },
  /** An existing device did not approve this new one: `details.reason` is 'rejected' or 'expired'. */
  DEVICE_NOT_APPROVED: { status: 403 },
  /** The sender's card could not be fetched from the directory. */
  CARD_UNAVAILABLE: { status: 503 },
  /** The OrgCard served is not one pinned in the configuration (`orgPublicKeys`): no backups are made for it. */
  ORG_KEY_UNTRUSTED: { status: 409 },
  /** The OrgCard changed since it was trusted on first use: backups wait until the app accepts it. */
  ORG_KEY_CHANGED: { status: 409 },
  /**
   * A card served without a valid inclusion proof of its registration event in a checkpoint the
   * client holds (none after waiting for the next checkpoint, or none at all): never used.
   */
  CARD_UNLOGGED: { status: 400 },
  /** The card directory forked or rolled back its log (a `directoryAlert`): sends wait until the app accepts the alert. */
  DIRECTORY_UNTRUSTED: { status: 409 },
  /** The card service answered with something other than the error shape; `details.status` says which status. */
  SERVER_ERROR: { status: 502 },
  /** The card service or the relay could not be reached. */
  NETWORK_ERROR: { status: 503 },
  /** The relay connection closed (or was never open) before the answer came. */
  DISCONNECTED: { status: 503 },
  /**
   * A Twilio feature the local relay does not have (push notifications, media, user profiles,
   * notification levels, non-chat participants, deleting a conversation): refused, nothing done.
   */
  RELAY_UNSUPPORTED: { status: 501 },
} as const satisfies Record<string, ErrorSpec>;

/** Every error code, by name: `ErrorCode.KEY_IN_USE === 'KEY_IN_USE'`. */
export const ErrorCode = defineCatalogue(CATALOGUE);
export type ErrorCode = keyof typeof CATALOGUE;

/** The HTTP status of an answer with `code`. */
export function errorStatus(code: ErrorCode): number {
  return CATALOGUE[code].status;
}

/** Whether `value` is a code of the catalogue (e.g. one a server sent). */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(CATALOGUE, value);
}

/** The typed details of the codes that have them. */
export interface ErrorDetailsByCode {
  NO_CARDS: { identities: string[] };
  NON_CHAT_PARTICIPANT: { participants: string[] };
  DEVICE_NOT_APPROVED: { reason: 'rejected' | 'expired'; cardId: string };
  CONFIG_INVALID: { problems: string[] };
}

/** Facts any error may carry: `status` is the HTTP status of the answer when the card service sent the error. */
export interface CommonErrorDetails {
  status?: number;
}

/** The details of an error with code `C`; for an unnarrowed code, any of them. */
export type ErrorDetails<C extends ErrorCode = ErrorCode> = [ErrorCode] extends [C]
  ? CommonErrorDetails & Record<string, unknown>
  : CommonErrorDetails & (C extends keyof ErrorDetailsByCode ? ErrorDetailsByCode[C] : Record<string, unknown>);

/** The one error type of the core, the server, the relay and the client. `code` is stable; `message` is for humans. */
export class E2EEError extends Error {
  readonly code: ErrorCode;
  /** Structured facts about the failure, e.g. `{identities: [...]}` for NO_CARDS, `{status}` for a server answer. */
  readonly details: ErrorDetails | undefined;
  /** The codes of ErrorDetailsByCode carry those details (E2EEErrorOf reads them typed). */
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; details?: ErrorDetails }) {
    super(message, options);
    this.name = 'E2EEError';
    this.code = code;
    this.details = options?.details;
  }
  /** The HTTP status of this error's code (the catalogue's). */
  get status(): number {
    return errorStatus(this.code);
  }
  toJSON(): { code: ErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

/** An E2EEError known to have code `C`, with that code's details. */
export type E2EEErrorOf<C extends ErrorCode> = E2EEError & { readonly code: C; readonly details: ErrorDetails<C> | undefined };

/** Whether `err` is an E2EEError, and with `code`, one with that code (narrowing its details). */
export function isE2EEError<C extends ErrorCode = ErrorCode>(err: unknown, code?: C): err is E2EEErrorOf<C> {
  return err instanceof E2EEError && (code === undefined || err.code === code);
}
