/**
 * The backup outbox's retry rule: transient failures (network, 5xx, 408, 429) stay queued and
 * are retried; HISTORY_DISABLED (a 503) and other refusals are final and reported with the
 * server's code unchanged.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { HistoryOutbox, type BackupFailure } from '../../client/history.js';
import { MemoryKeyStore } from '../../client/key-store.js';
import type { HistoryPostRequest } from '../../shared/api.js';
import { E2EEError, ErrorCode } from '../../shared/errors.js';

const entry: HistoryPostRequest = { conversationSid: 'CH1', messageSid: 'IM1', index: 0, envelope: 'e', orgWrap: 'w' };

function outboxFailingWith(err: E2EEError): { outbox: HistoryOutbox; failures: BackupFailure[]; posts: () => number } {
  const failures: BackupFailure[] = [];
  let posts = 0;
  const outbox = new HistoryOutbox(
    new MemoryKeyStore(),
    'outbox',
    async () => {
      posts++;
      throw err;
    },
    (failure) => failures.push(failure),
  );
  return { outbox, failures, posts: () => posts };
}

afterEach(() => vi.useRealTimers());

describe('HistoryOutbox', () => {
  it('drops and reports a backup refused with HISTORY_DISABLED, without retrying', async () => {
    const { outbox, failures, posts } = outboxFailingWith(new E2EEError(ErrorCode.HISTORY_DISABLED, 'no OrgKey', { details: { status: 503 } }));
    await outbox.add(entry);
    await vi.waitFor(() => expect(failures).toHaveLength(1));
    expect(failures[0]!.error.code).toBe(ErrorCode.HISTORY_DISABLED);
    expect(await outbox.pending()).toBe(0);
    expect(posts()).toBe(1);
    outbox.stop();
  });

  it('keeps a backup that failed with another 503 and retries it', async () => {
    vi.useFakeTimers();
    const { outbox, failures, posts } = outboxFailingWith(new E2EEError(ErrorCode.TWILIO_UNAVAILABLE, 'try again', { details: { status: 503 } }));
    await outbox.add(entry);
    await vi.waitFor(() => expect(posts()).toBe(1));
    await vi.advanceTimersByTimeAsync(1_000);
    await vi.waitFor(() => expect(posts()).toBe(2));
    expect(failures).toHaveLength(0);
    expect(await outbox.pending()).toBe(1);
    outbox.stop();
  });
});
