/** Errors in words people act on: who has no device, whether anything was sent, what to do. */
import { ErrorCode, isE2EEError } from '../../index.js';
import { listNames } from './format.js';

/** 'refused': sending the same again fails the same way (a file too large), so no Retry. */
export type Problem = 'no-cards' | 'offline' | 'expired' | 'revoked' | 'refused' | 'other';

export interface Described {
  kind: Problem;
  title: string;
  detail?: string;
}

export function describeError(err: unknown): Described {
  if (isE2EEError(err)) {
    switch (err.code) {
      case ErrorCode.NO_CARDS: {
        const who = isE2EEError(err, ErrorCode.NO_CARDS) ? (err.details?.identities ?? []) : [];
        return {
          kind: 'no-cards',
          title: `${listNames(who) || 'Someone here'} ${who.length > 1 ? 'have' : 'has'} no device yet`,
          detail: 'Nothing was sent. Messages are encrypted for every device of every participant, so each person must sign in once on a device first.',
        };
      }
      case ErrorCode.NON_CHAT_PARTICIPANT:
        return { kind: 'other', title: 'Someone here uses SMS, WhatsApp or email', detail: 'They cannot decrypt end-to-end encrypted messages. Nothing was sent.' };
      case ErrorCode.ENVELOPE_TOO_LARGE:
      case ErrorCode.ENVELOPE_TOO_MANY_RECIPIENTS:
        return { kind: 'other', title: 'Message too large', detail: 'Encrypted for every device here it exceeds what a message can hold. Nothing was sent.' };
      case ErrorCode.DEVICE_NOT_REGISTERED:
        return { kind: 'revoked', title: 'This device was revoked', detail: 'Its keys can no longer send. Sign in again to register a new device.' };
      case ErrorCode.NETWORK_ERROR:
        return { kind: 'offline', title: 'The server cannot be reached', detail: 'Check your connection; nothing was sent.' };
      case ErrorCode.DISCONNECTED:
        return { kind: 'offline', title: 'Not connected', detail: 'Nothing was sent; try again once the connection is back.' };
      case ErrorCode.UNAUTHORIZED:
      case ErrorCode.TOKEN_EXPIRED:
        return { kind: 'expired', title: 'Your session expired', detail: 'Sign in again to continue.' };
      case ErrorCode.NOT_MESSAGE_AUTHOR:
        return { kind: 'other', title: 'Only its author can edit a message', detail: 'Its text is signed by the author’s device. Nothing was changed.' };
      case ErrorCode.SERVER_ERROR:
        return { kind: 'other', title: 'The server refused the request', detail: err.message };
      default:
        return { kind: 'other', title: err.code.replace(/_/g, ' ').toLowerCase().replace(/^./, (c) => c.toUpperCase()), detail: err.message };
    }
  }
  return { kind: 'other', title: 'Something went wrong', detail: err instanceof Error ? err.message : String(err) };
}
