/**
 * What the local relay does not carry, answered the way the SDK answers when a Twilio feature is
 * not in use (no media: empty lists and maps) or refused with RELAY_UNSUPPORTED where an answer
 * would claim an effect that never happens (a push registration that brings no push).
 */
import { E2EEError, ErrorCode } from '../../shared/errors.js';

/** The refusal of a call the relay cannot serve; `what` completes "the local relay has no …". */
export function unsupported(what: string): E2EEError {
  return new E2EEError(ErrorCode.RELAY_UNSUPPORTED, `the local relay has no ${what}`);
}

/** A promise with the `cancel()` of the SDK's CancellablePromise (nothing here to cancel). */
export function cancellable<T>(promise: Promise<T>): Promise<T> & { cancel(): void } {
  return Object.assign(promise, { cancel: () => undefined });
}

/** The sids of a list of media (the SDK's Media, or their sids); INVALID_ARGUMENT for anything else. */
function mediaSids(media: unknown): string[] {
  if (!Array.isArray(media)) throw new E2EEError(ErrorCode.INVALID_ARGUMENT, 'expected an array of media or media sids');
  return media.map((m: unknown) => (typeof m === 'string' ? m : String((m as { sid?: unknown } | null)?.sid)));
}

/**
 * Temporary content URLs: the relay holds no media, so an empty set gets an empty map and any
 * media sid is refused (it cannot be the relay's).
 */
export function mediaUrls(media: unknown): Promise<Map<string, string>> & { cancel(): void } {
  return cancellable(
    (async () => {
      const sids = mediaSids(media);
      if (sids.length > 0) throw unsupported(`media: it carries text only (asked for ${sids.join(', ')})`);
      return new Map<string, string>();
    })(),
  );
}

/**
 * The SDK's ConversationLimits for the relay, which carries no media and no email: nothing is
 * allowed (an app that reads them offers no attachments, which the wrapper refuses anyway).
 */
export function relayConversationLimits() {
  return {
    mediaAttachmentsCountLimit: 0,
    mediaAttachmentSizeLimitInMb: 0,
    mediaAttachmentsTotalSizeLimitInMb: 0,
    emailHistoriesAllowedContentTypes: [] as string[],
    emailBodiesAllowedContentTypes: [] as string[],
  };
}
