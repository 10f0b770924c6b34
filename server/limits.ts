/**
 * Limits only the card service enforces, with the reasoning. Limits the client must know too
 * (lookup batch, history page, clock skews, the org: prefix) are in shared/limits.ts.
 */

/**
 * Active cards per identity. Every sender encrypts for every card of every participant, so this
 * also bounds envelope size: 20 devices is far above real use and far below the 4096 recipients
 * of an envelope.
 */
export const MAX_ACTIVE_CARDS_PER_IDENTITY = 20;

/**
 * Envelope text per history page, bytes: the page stops before the message that would pass it
 * (always at least one message) and says `truncated`, so the reader continues after its last
 * index. 1 MiB is about 40 of the largest messages; a page of 500 such messages was 16 MB of JSON.
 */
export const HISTORY_PAGE_MAX_BYTES = 1024 * 1024;

/**
 * History pages are built in chunks of this many messages, yielding to the event loop between
 * chunks: each message costs an X25519 and two AEAD operations (and parsing its envelope), so a
 * whole page at once held every other request (health probes included) for up to a second.
 */
export const HISTORY_REWRAP_CHUNK = 4;

/**
 * History pages built at once per process, and pages that may wait for a turn; more waiting is a
 * 429 (retry in a second). The work is CPU on the one event loop, so building pages side by side
 * would not finish them sooner; one at a time, a health probe waits for at most one chunk.
 */
export const HISTORY_PAGES_AT_ONCE = 1;
export const HISTORY_PAGES_WAITING = 64;
