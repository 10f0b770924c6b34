/**
 * What the local relay does not carry, answered the way the SDK answers when a Twilio feature is
 * not in use (no templates: empty lists) or refused with RELAY_UNSUPPORTED where an answer would
 * claim an effect that never happens (a push registration that brings no push); and the
 * conversation limits.
 */
import { E2EEError, ErrorCode } from '../../shared/errors.js';
import { RELAY_LIMITS } from '../../shared/relay-protocol.js';

/** The refusal of a call the relay cannot serve; `what` completes "the local relay has no …". */
export function unsupported(what: string): E2EEError {
  return new E2EEError(ErrorCode.RELAY_UNSUPPORTED, `the local relay has no ${what}`);
}

/** A promise with the `cancel()` of the SDK's CancellablePromise (nothing here to cancel). */
export function cancellable<T>(promise: Promise<T>): Promise<T> & { cancel(): void } {
  return Object.assign(promise, { cancel: () => undefined });
}

/**
 * The SDK's ConversationLimits for the relay: Twilio's media limits (10 blobs of up to 150 MB a
 * message), and no email.
 */
export function relayConversationLimits() {
  return {
    mediaAttachmentsCountLimit: RELAY_LIMITS.mediaPerMessage,
    mediaAttachmentSizeLimitInMb: RELAY_LIMITS.mediaBytes / 1_000_000,
    mediaAttachmentsTotalSizeLimitInMb: (RELAY_LIMITS.mediaPerMessage * RELAY_LIMITS.mediaBytes) / 1_000_000,
    emailHistoriesAllowedContentTypes: [] as string[],
    emailBodiesAllowedContentTypes: [] as string[],
  };
}
