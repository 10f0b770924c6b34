/**
 * Message envelope v1 and rewrap (docs/PROTOCOL.md sections 5 and 6), one module per step:
 * envelope-layout.ts (sizes, parsing, slot lookup), envelope-seal.ts, envelope-open.ts (unwrap,
 * decrypt, verify), envelope-rewrap.ts and payload.ts (the signed payload). Deterministic sealing for test vectors is in testing.ts,
 * deliberately not here.
 */
export { findSlots, looksLikeEnvelope, maxRecipientsForBody, parseEnvelope, type EnvelopePayload, type ParsedEnvelope } from './envelope-layout.js';
export {
  sealEnvelope,
  sealEnvelopeAsync,
  type AsyncEnvelopeSender,
  type AsyncSealInput,
  type EnvelopeRecipient,
  type EnvelopeSender,
  type SealInput,
  type SealedEnvelope,
} from './envelope-seal.js';
export {
  decryptWithContentKey,
  openEnvelope,
  openEnvelopeAsync,
  unwrapContentKey,
  verifyDecrypted,
  type AsyncEnvelopeOpener,
  type AsyncOpenOptions,
  type DecryptedEnvelope,
  type EnvelopeOpener,
  type OpenOptions,
  type OpenedEnvelope,
  type SenderCard,
  type VerifyContext,
} from './envelope-open.js';
export { createRewrap, createRewrapper, openRewrap } from './envelope-rewrap.js';
export {
  clearAttributesMatch,
  payloadAttributes,
  payloadCheckpoint,
  payloadEdit,
  splitAttributes,
  type EditMarker,
  type GossipCheckpoint,
  type JsonObject,
  type JsonValue,
  type PayloadContent,
} from './payload.js';
