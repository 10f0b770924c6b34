/** The options and events of E2EEClient (client/e2ee-client.ts). */
import type { PendingDevice } from '../shared/api.js';
import { trustAppKeys } from '../shared/card.js';
import { E2EEError, ErrorCode } from '../shared/errors.js';
import type { AuthTokenSource, FetchLike } from './api-client.js';
import type { PreviewMaker } from './attachment-preview.js';
import type { AttachmentProgress } from './attachment-send.js';
import type { KeyChange, RejectedCard } from './card-directory.js';
import type { DirectoryAlert } from './directory-alert.js';
import type { BackupFailure, BackupMode } from './history.js';
import type { KeyStore } from './key-store.js';
import type { LocalConnectOptions } from './local/relay-client.js';
import { checkLogOptions } from './log-view.js';
import { checkOrgPins, type OrgKeyChange } from './org-key.js';
import type { MessageGap } from './wrapper.js';

export interface E2EEClientOptions {
  /** The card service, e.g. "https://chat.example.com". */
  serverUrl: string;
  /** The team's app JWT (its `sub` is the Twilio identity); called for every request. */
  getAuthToken: AuthTokenSource;
  /** Pinned AppKey public keys (b64u). Cards are trusted only under these, never under what the server says today. */
  appPublicKeys: string[];
  /**
   * Pinned OrgCard box public keys (b64u, printed by keygen): history backups are wrapped only
   * for an OrgCard with one of these keys. Without pins the first OrgCard seen is trusted, and a
   * later change raises `orgKeyChange` and holds backups until `acceptOrganizationKey`.
   */
  orgPublicKeys?: string[];
  /** Where the device keys live; default IndexedDB in browsers, required in Node. */
  keyStore?: KeyStore;
  /** A name for this device shown to contacts, e.g. "Alice's laptop". */
  deviceName?: string;
  /** fetch implementation; default globalThis.fetch. */
  fetch?: FetchLike;
  /** WebSocket implementation for the local relay; default the global one (in Node 20, importing twilio-e2ee/client/node provides the `ws` package). */
  WebSocket?: LocalConnectOptions['WebSocket'];
  /**
   * How long looked-up active cards are reused before asking the service again; default 5 s.
   * Participant events and a contact's device-change notice also refresh them at once.
   */
  cardCacheTtlMs?: number;
  /**
   * Organization backups posted to the history service: 'send' (default) backs up every message
   * this device sends, 'send+receive' also every message it receives verified, 'off' none.
   */
  backup?: BackupMode;
  /**
   * Top-level message attribute keys sent in the clear, e.g. a ticket id the backend routes by:
   * Twilio holds these (and only these) as the message's attributes. Every other key is encrypted;
   * all are signed. Default none.
   */
  clearAttributes?: string[];
  /**
   * Previews of image files sent, carried inside the envelope: by default (browsers) a thumbnail
   * of at most 96 pixels; `false` for none; or the app's own function (Node has no default).
   */
  attachmentPreview?: false | PreviewMaker;
  /**
   * The card transparency log: cards are used only with a valid inclusion proof in a checkpoint
   * signed by this key (and cosigned by `witnesses.required` of the witness keys). `key` is the
   * LogKey's verifier key (`<origin>+<key id>+<base64>`, printed by keygen), pinned like the
   * AppKey. Without it the key /v1/log/key serves the first time is trusted and kept (trust on
   * first use, like the demo: a service that lies from the very start goes unnoticed).
   */
  log?: LogOptions;
  /** How often this device checks its own identity's chain in the log (owner monitoring); default 60 s. */
  monitorIntervalMs?: number;
}

export interface LogOptions {
  /** The LogKey's verifier key, e.g. "chat.example.com/log+1a2b3c4d+AaGx…". */
  key: string;
  /** Witness cosignature verifier keys (type 0x04) and how many of them must cosign a checkpoint. */
  witnesses?: { keys: string[]; required: number };
}

export interface E2EEClientEventMap {
  /** A contact's set of devices changed (like a changed safety number). */
  keyChange(change: KeyChange): void;
  /**
   * register() of this new device waits for an existing device of the identity to approve it
   * (NEW_DEVICE_POLICY=approval): tell the user to approve `deviceName` there before `expiresAt`.
   */
  deviceApprovalPending(pending: PendingDevice): void;
  /** The directory served a card that failed verification; it was ignored. */
  cardRejected(rejected: RejectedCard): void;
  /** A backup could not be made, or the history service refused it for good. */
  backupFailed(failure: BackupFailure): void;
  /**
   * The OrgCard served differs from the one trusted (or matches no pinned key): whoever holds it
   * would read backed-up history. Backups wait until `acceptOrganizationKey(current.cardId)`.
   */
  orgKeyChange(change: OrgKeyChange): void;
  /** Message indexes that never arrived in a conversation of a wrapped client (withheld or deleted). */
  messageGap(gap: MessageGap): void;
  /** A wrapped client's token was refreshed by the wrapper (on the SDK's tokenAboutToExpire or tokenExpired). */
  tokenUpdated(): void;
  /** A token refresh failed; the app may need to sign in again. */
  tokenRefreshFailed(error: Error): void;
  /**
   * The card directory was caught lying (a device of yours you did not add, a card outside the
   * transparency log, a forked or rolled-back log): show it, with `alert.message`, apart from
   * ordinary key changes. Raised once per finding. A 'log-fork' or 'log-rollback' stops sends
   * (DIRECTORY_UNTRUSTED) until `acceptDirectoryAlert(alert.id)`.
   */
  directoryAlert(alert: DirectoryAlert): void;
  /** A file of a message being sent: encrypting, then uploading (local relay only), then sent. */
  attachmentProgress(progress: AttachmentProgress): void;
}

export interface RegisterOptions {
  /** How often a new device waiting for approval asks whether it was decided; default 2000 ms. */
  approvalPollMs?: number;
}

/** Fails early on options E2EEClient.create cannot work with (INVALID_ARGUMENT, or the pin's own error). */
export async function checkOptions(options: E2EEClientOptions): Promise<void> {
  if (!options || typeof options.serverUrl !== 'string' || typeof options.getAuthToken !== 'function') {
    throw new E2EEError(ErrorCode.INVALID_ARGUMENT, 'E2EEClient.create needs serverUrl and getAuthToken');
  }
  trustAppKeys(options.appPublicKeys ?? []); // a malformed pin
  checkOrgPins(options.orgPublicKeys);
  if (options.log !== undefined) await checkLogOptions(options.log);
  const interval = options.monitorIntervalMs;
  if (interval !== undefined && !(Number.isSafeInteger(interval) && interval >= 1000)) {
    throw new E2EEError(ErrorCode.INVALID_ARGUMENT, '"monitorIntervalMs" expected an integer of at least 1000');
  }
  const preview = options.attachmentPreview;
  if (preview !== undefined && preview !== false && typeof preview !== 'function') {
    throw new E2EEError(ErrorCode.INVALID_ARGUMENT, '"attachmentPreview" expected false or a function (file: Blob) => Promise<preview | undefined>');
  }
}
