/**
 * What the client loads on demand, as one chunk of a browser bundle (one request, no small
 * chunks split apart): the recipient audit, sending and reading files, and the signed-note and
 * checkpoint parsers. A page loads less up front (README, client bundle); these load when a
 * client is wrapped, a file sent or read, or the first checkpoint or `log` option is read.
 */
export { checkMessage, messageChecks } from './message-checks.js';
export { sendWithFiles } from './attachment-send.js';
export { decryptAttachment } from '../shared/attachment-open.js';
export { noteVerifierFromKey } from '../shared/signed-note-keys.js';
export { cosignatureVerifierFromKey } from '../shared/log-cosignature.js';
export { openCheckpoint } from '../shared/log-checkpoint.js';
