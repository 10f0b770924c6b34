/**
 * twilio-e2ee/client: the E2EE wrapper for @twilio/conversations, key stores, the local relay
 * client. Runs in browsers and bundles without Node built-ins; Node apps import
 * twilio-e2ee/client/node (client/node.ts), which adds FileKeyStore and `ws`.
 */
export { E2EEClient, wrap, e2eeClientOf, type E2EEClientOptions, type E2EEClientEventMap, type RegisterOptions } from './e2ee-client.js';
export type { PendingDevice } from '../shared/api.js';
export { GAP_WAIT_MS, type MessageGap } from './wrapper.js';
export { unwrap } from './intercept.js';
export { e2eeInfo } from './wrapped-message.js';
export { blobFilename, type AttachmentPreview, type AttachmentReadOptions, type E2EEAttachment } from './attachment.js';
export type { AttachmentProgress } from './attachment-send.js';
export { imagePreview, previewSize, PREVIEW_MAX_SIDE, type PreviewMaker } from './attachment-preview.js';
export { MAX_ATTACHMENT_BYTES } from '../shared/attachment-format.js';
export { decryptPushNotification, type NewMessageNotification } from './push.js';
export { FAILED_BODY, type E2EEInfo } from './message-crypto.js';
export type { KeyChange, RejectedCard } from './card-directory.js';
export { BLOCKING_ALERT_KINDS, type DirectoryAlert, type DirectoryAlertKind } from './directory-alert.js';
export type { LogOptions } from './e2ee-client-options.js';
export type { OrganizationKeyInfo, OrgKeyChange } from './org-key.js';
export { DEFAULT_CARD_CACHE_TTL_MS, REPLAY_WINDOW_MESSAGES } from '../shared/limits.js';
export { HistoryOutbox, type BackupMode, type BackupFailure } from './history.js';
export { MemoryKeyStore, type KeyStore, type DeviceRecord, type StoredDevice, type WebCryptoDeviceRecord } from './key-store.js';
export type { WebCryptoDeviceKeys } from './webcrypto-device-keys.js';
export { IndexedDbKeyStore, type IndexedDbKeyStoreOptions } from './indexeddb-key-store.js';
export { LocalConversationsClient, LocalConversation, LocalMessage, LocalParticipant } from './local/relay-client.js';
export type { BaseClient, BaseConversation, BaseMessage, BaseParticipant, BasePaginator } from './conversations.js';
export { E2EEError, ErrorCode, isE2EEError } from '../shared/errors.js';
export { SAFETY_NUMBER_VERSION, SAFETY_NUMBER_VERSION_CARDS_ONLY } from '../shared/constants.js';
export { safetyNumberVersion } from '../shared/safety-number.js';

import type { E2EEInfo } from './message-crypto.js';

declare module '@twilio/conversations' {
  interface Message {
    /**
     * How this message was verified (twilio-e2ee): `verified`, `unencrypted` or `failed`, and by
     * which device. Set on the messages of a wrapped client; undefined on an unwrapped one's.
     */
    readonly e2ee?: E2EEInfo;
  }
}
