/**
 * Typed errors with stable codes. Every way a card, an envelope or an argument can be wrong has
 * its own code; apps and the server branch on `code`, never on `message`. The list is documented
 * in docs/PROTOCOL.md ("Error codes") and must stay in step with it.
 */
export const ErrorCode = {
  /** An argument given to a function of the core is of the wrong type or length. */
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
  /** A b64u or hex string is not canonical (padding, wrong alphabet, stray bits, upper case). */
  ENCODING_INVALID: 'ENCODING_INVALID',

  CARD_MALFORMED: 'CARD_MALFORMED',
  CARD_TOO_LARGE: 'CARD_TOO_LARGE',
  CARD_ID_MISMATCH: 'CARD_ID_MISMATCH',
  CARD_SELF_SIGNATURE_INVALID: 'CARD_SELF_SIGNATURE_INVALID',
  CARD_APP_SIGNATURE_INVALID: 'CARD_APP_SIGNATURE_INVALID',
  CARD_APP_KEY_UNTRUSTED: 'CARD_APP_KEY_UNTRUSTED',
  CARD_IDENTITY_MISMATCH: 'CARD_IDENTITY_MISMATCH',
  CARD_REVOKED: 'CARD_REVOKED',
  CARD_WEAK_KEY: 'CARD_WEAK_KEY',
  /**
   * The card's lifetime cannot be true: revoked at or before its creation (it was never active),
   * or revoked at a time still in the future. Such a card never vouches for a message.
   */
  CARD_LIFETIME_INVALID: 'CARD_LIFETIME_INVALID',

  ENVELOPE_MALFORMED: 'ENVELOPE_MALFORMED',
  ENVELOPE_UNSUPPORTED_VERSION: 'ENVELOPE_UNSUPPORTED_VERSION',
  ENVELOPE_TOO_LARGE: 'ENVELOPE_TOO_LARGE',
  ENVELOPE_TOO_MANY_RECIPIENTS: 'ENVELOPE_TOO_MANY_RECIPIENTS',
  ENVELOPE_NOT_FOR_ME: 'ENVELOPE_NOT_FOR_ME',
  ENVELOPE_COMMITMENT_MISMATCH: 'ENVELOPE_COMMITMENT_MISMATCH',
  ENVELOPE_DECRYPT_FAILED: 'ENVELOPE_DECRYPT_FAILED',
  ENVELOPE_SIGNATURE_INVALID: 'ENVELOPE_SIGNATURE_INVALID',
  ENVELOPE_SENDER_CARD_MISMATCH: 'ENVELOPE_SENDER_CARD_MISMATCH',
  ENVELOPE_SENDER_NOT_AUTHOR: 'ENVELOPE_SENDER_NOT_AUTHOR',
  ENVELOPE_SENDER_REVOKED: 'ENVELOPE_SENDER_REVOKED',
  ENVELOPE_CONVERSATION_MISMATCH: 'ENVELOPE_CONVERSATION_MISMATCH',
  ENVELOPE_REPLAY: 'ENVELOPE_REPLAY',
  /** The signed sentAt is further from the transport's timestamps than the allowed clock skew. */
  ENVELOPE_SENT_AT_MISMATCH: 'ENVELOPE_SENT_AT_MISMATCH',
  /** An edited message went back to an earlier version (an older signed sentAt) than one already shown. */
  ENVELOPE_ROLLBACK: 'ENVELOPE_ROLLBACK',
  REWRAP_MALFORMED: 'REWRAP_MALFORMED',

  // Client-side refusals (the wrapper around @twilio/conversations).
  /** Some participants have no registered device; `details.identities` lists them. Nothing was sent. */
  NO_CARDS: 'NO_CARDS',
  /** A participant is not a chat user (SMS, WhatsApp, email): it cannot decrypt. Nothing was sent. */
  NON_CHAT_PARTICIPANT: 'NON_CHAT_PARTICIPANT',
  /** Only text bodies can be encrypted (media and email content are refused). */
  UNSUPPORTED_CONTENT: 'UNSUPPORTED_CONTENT',
  /** This device has no card yet: call register() first. */
  DEVICE_NOT_REGISTERED: 'DEVICE_NOT_REGISTERED',
  /** An existing device did not approve this new one: `details.reason` is 'rejected' or 'expired'. */
  DEVICE_NOT_APPROVED: 'DEVICE_NOT_APPROVED',
  /** The sender's card could not be fetched from the directory. */
  CARD_UNAVAILABLE: 'CARD_UNAVAILABLE',
  /** The OrgCard served is not one pinned in the configuration (`orgPublicKeys`): no backups are made for it. */
  ORG_KEY_UNTRUSTED: 'ORG_KEY_UNTRUSTED',
  /** The OrgCard changed since it was trusted on first use: backups wait until the app accepts it. */
  ORG_KEY_CHANGED: 'ORG_KEY_CHANGED',
  /** The card service answered with an error; `details.status` and `details.serverCode` say which. */
  SERVER_ERROR: 'SERVER_ERROR',
  /** The card service could not be reached. */
  NETWORK_ERROR: 'NETWORK_ERROR',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** The one error type the core throws. `code` is stable; `message` is for humans. */
export class E2EEError extends Error {
  readonly code: ErrorCode;
  /** Structured facts about the failure, e.g. `{identities: [...]}` for NO_CARDS. */
  readonly details: Record<string, unknown> | undefined;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(message, options);
    this.name = 'E2EEError';
    this.code = code;
    this.details = options?.details;
  }
  toJSON(): { code: ErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

export function isE2EEError(err: unknown, code?: ErrorCode): err is E2EEError {
  return err instanceof E2EEError && (code === undefined || err.code === code);
}
