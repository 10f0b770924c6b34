/** twilio-e2ee/shared: the isomorphic core (formats, crypto, errors). No I/O. */
export * from './constants.js';
export * from './limits.js';
export * from './errors.js';
export { toB64u, fromB64u, fromB64uExact, toHex, fromHex, utf8, fromUtf8, concatBytes, equalBytes } from './encoding.js';
export { ready, randomBytes } from './sodium.js';
export * from './keys.js';
export * from './card.js';
export * from './envelope.js';
export * from './api.js';
export * from './safety-number.js';
export * from './attachment.js';
// The card transparency log (docs/PROTOCOL.md section 17).
export * from './merkle.js';
export * from './signed-note.js';
export * from './signed-note-keys.js';
export * from './log-checkpoint.js';
export * from './log-cosignature.js';
export * from './log-event.js';
export * from './log-card.js';
