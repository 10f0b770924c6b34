/**
 * The message timeline of one conversation: bubbles with their verification badge and sender
 * device, edits and reactions (message-tools.ts), inline notices (key changes, people joining),
 * local echoes of messages being sent, and the "what Twilio sees" rendering of the same messages
 * as raw envelopes.
 */
import type { Message } from '@twilio/conversations';
import { e2eeInfo, FAILED_BODY, unwrap } from '../../../index.js';
import { h, icon, type Child } from '../dom.js';
import { formatDay, formatTime } from '../format.js';
import type { ReactionGroup } from '../reactions.js';
import type { ChatSession, ConversationState, Notice, Pending } from '../session.js';
import { attachmentsOf } from '../files.js';
import { attachmentsView, rawMediaView, uploadsView } from './files.js';
import { editedMark, errorBox, type MessageTools } from './message-tools.js';

export interface TimelineActions {
  showSafetyNumber(identity: string): void;
  retry(pending: Pending): void;
  discard(pending: Pending): void;
  loadEarlier(): void;
}

const UNENCRYPTED_HINT = 'Sent without end-to-end encryption (not by this app): Twilio could read it, and anyone able to post could have written it.';

/** The marker of a message that is not verified, wherever its text or a preview of it appears (e.g. the conversation list). */
export function statusFlag(status: 'unencrypted' | 'failed'): HTMLElement {
  return status === 'unencrypted'
    ? h('span', { class: 'flag flag-warn', title: UNENCRYPTED_HINT, 'data-testid': 'status-flag' }, icon('unlock', 'icon icon-xs'), 'Unencrypted')
    : h('span', { class: 'flag flag-bad', title: 'Could not be verified, so its text is hidden.', 'data-testid': 'status-flag' }, icon('alert', 'icon icon-xs'), 'Not verified');
}

/** The lock badge: how the wrapper verified this message. */
export function statusBadge(message: Message, session: ChatSession): HTMLElement {
  const e2ee = e2eeInfo(message);
  const device = e2ee.senderDeviceName || 'an unnamed device';
  if (e2ee.status === 'verified') {
    const card = e2ee.senderCardId ? ` (card ${e2ee.senderCardId.slice(0, 8)}…)` : '';
    const title = `End-to-end encrypted and signed by ${message.author === session.identity ? 'your' : `${message.author}’s`} device “${device}”${card}.`;
    return h('span', { class: 'badge badge-ok', title, 'data-testid': 'badge' }, icon('lock', 'icon icon-xs'), 'Verified');
  }
  if (e2ee.status === 'unencrypted') {
    return h('span', { class: 'badge badge-warn', title: UNENCRYPTED_HINT, 'data-testid': 'badge' }, icon('unlock', 'icon icon-xs'), 'Unencrypted');
  }
  const reason = e2ee.error ? `${e2ee.error.code}: ${e2ee.error.message}` : 'unknown reason';
  return h('span', { class: 'badge badge-bad', title: `Could not be verified, so its text is hidden. ${reason}`, 'data-testid': 'badge' }, icon('alert', 'icon icon-xs'), 'Failed');
}

function historyBadge(): HTMLElement {
  return h(
    'span',
    { class: 'badge badge-history', title: 'Sent before this device was in the conversation: delivered through the organization’s history backup, re-encrypted for this device and verified against the original sender.', 'data-testid': 'history-badge' },
    icon('history', 'icon icon-xs'),
    'From history',
  );
}

function messageView(message: Message, session: ChatSession, showAuthor: boolean, tools: MessageTools, reactions: ReactionGroup[] | undefined): HTMLElement {
  const mine = message.author === session.identity;
  const e2ee = e2eeInfo(message);
  const failed = e2ee.status === 'failed';
  const text = failed ? (message.body ?? FAILED_BODY) : (message.body ?? '');
  // A message of files only shows them without an empty bubble.
  const bubble = text || attachmentsOf(message).length === 0 ? h('div', { class: 'bubble', 'data-testid': 'message-body' }, text) : null;
  const content = h('div', { class: 'msg-content' }, attachmentsView(message, session.files), tools.editor(message) ?? bubble);
  return h(
    'div',
    {
      class: `msg ${mine ? 'mine' : 'theirs'} status-${e2ee.status}`,
      'data-testid': 'message',
      'data-status': e2ee.status,
      'data-via': e2ee.via,
      'data-author': message.author ?? '',
      'data-index': message.index,
    },
    showAuthor && !mine ? h('div', { class: 'msg-author' }, message.author ?? 'unknown') : null,
    h('div', { class: 'msg-row' }, content, tools.actions(message)),
    tools.picker(message),
    tools.chips(message, reactions),
    tools.problem(message),
    h(
      'div',
      { class: 'msg-meta' },
      h('time', { datetime: message.dateCreated?.toISOString() ?? '' }, formatTime(message.dateCreated)),
      editedMark(message),
      e2ee.senderDeviceName !== undefined ? h('span', { class: 'msg-device', 'data-testid': 'sender-device', title: 'The sender’s device, from its verified card' }, icon('devices', 'icon icon-xs'), e2ee.senderDeviceName || 'unnamed device') : null,
      statusBadge(message, session),
      e2ee.via === 'history' ? historyBadge() : null,
      e2ee.alerts ? directoryFlag(e2ee.alerts) : null,
      failed && e2ee.error ? h('span', { class: 'msg-error' }, e2ee.error.code) : null,
    ),
  );
}

/** A verified message the directory audit found something about: still shown, marked (the banner says what to do). */
function directoryFlag(alerts: NonNullable<ReturnType<typeof e2eeInfo>['alerts']>): HTMLElement {
  return h('span', { class: 'flag flag-bad', title: alerts.map((a) => a.message).join('\n'), 'data-testid': 'directory-flag' }, icon('alert', 'icon icon-xs'), 'Directory warning');
}

/** What Twilio (or the local relay) stores for this message: the envelope and metadata. */
function rawView(message: Message): HTMLElement {
  const body = unwrap(message).body ?? '';
  return h(
    'div',
    { class: 'raw-msg', 'data-testid': 'raw-message', 'data-index': message.index },
    h(
      'div',
      { class: 'raw-head' },
      h('b', null, message.author ?? 'unknown'),
      h('span', null, message.sid),
      h('span', null, `index ${message.index}`),
      h('span', null, formatTime(message.dateCreated)),
      h('span', null, `${body.length.toLocaleString()} chars`),
      e2eeInfo(message).status === 'unencrypted' ? statusFlag('unencrypted') : null,
    ),
    h('code', { class: 'raw-body', 'data-testid': 'raw-body' }, body),
    rawMediaView(message),
  );
}

function noticeView(notice: Notice, actions: TimelineActions): HTMLElement {
  return h(
    'div',
    { class: `notice tone-${notice.tone}`, 'data-testid': notice.keyChange ? 'key-change' : 'notice' },
    icon(notice.keyChange ? 'key' : 'info', 'icon icon-sm'),
    h('span', null, notice.text),
    notice.keyChange ? h('button', { class: 'link', type: 'button', onclick: () => actions.showSafetyNumber(notice.identity) }, 'Check safety number') : null,
  );
}

function pendingView(pending: Pending, actions: TimelineActions): HTMLElement {
  const failed = pending.state === 'failed';
  return h(
    'div',
    { class: `msg mine ${failed ? 'not-sent' : 'sending'}`, 'data-testid': failed ? 'not-sent' : 'sending' },
    uploadsView(pending.uploads),
    pending.body ? h('div', { class: 'bubble' }, pending.body) : null,
    failed
      ? errorBox(
          pending.error ?? { kind: 'other', title: 'Not sent' },
          'send-error',
          pending.error?.kind === 'revoked' || pending.error?.kind === 'refused' ? null : h('button', { class: 'btn sm', type: 'button', onclick: () => actions.retry(pending) }, 'Retry'),
          h('button', { class: 'btn sm ghost', type: 'button', onclick: () => actions.discard(pending) }, 'Discard'),
        )
      : h('div', { class: 'msg-meta' }, h('span', { class: 'spinner' }), 'Encrypting and sending…'),
  );
}

/** The timeline's contents, oldest first; the raw view shows every stored message, reactions included. */
export function timelineItems(state: ConversationState, session: ChatSession, raw: boolean, actions: TimelineActions, tools: MessageTools): Child[] {
  const items: Child[] = [];
  const messages = raw ? state.everything : state.sorted;
  const reactions = state.reactionGroups;
  if (state.earlier) items.push(h('div', { class: 'timeline-more' }, h('button', { class: 'btn sm ghost', type: 'button', onclick: () => actions.loadEarlier() }, 'Load earlier messages')));
  if (raw) {
    items.push(
      h(
        'div',
        { class: 'callout tone-raw', 'data-testid': 'raw-explainer' },
        icon('eye'),
        h(
          'span',
          null,
          h('b', null, `What ${session.mode === 'twilio' ? 'Twilio' : 'the relay (standing in for Twilio)'} stores. `),
          'Each body is an envelope: the text encrypted once, its key wrapped for every device in the conversation, and the sender’s signature inside. Only author and times are in the clear. ',
          'Each file is an opaque encrypted blob with a neutral name; its real name, type, size and key are inside the envelope.',
        ),
      ),
    );
  } else if (messages.some((m) => e2eeInfo(m).via === 'history')) {
    items.push(
      h(
        'div',
        { class: 'callout tone-history', 'data-testid': 'history-explainer' },
        icon('history'),
        h('span', null, h('b', null, 'Earlier messages come from the organization’s history. '), 'They were sent before this device joined; the history service re-encrypted them for it, and each is verified against its original sender’s signature.'),
      ),
    );
  }
  const notices = raw ? [] : [...state.notices].sort((a, b) => a.afterIndex - b.afterIndex || a.at - b.at);
  let n = 0;
  const flushNotices = (upTo: number) => {
    while (n < notices.length && notices[n]!.afterIndex <= upTo) items.push(noticeView(notices[n++]!, actions));
  };
  // Notices older than the loaded page are shown at its top.
  flushNotices((messages[0]?.index ?? 0) - 1);
  let lastDay = '';
  let lastAuthor: string | null = null;
  for (const message of messages) {
    const day = message.dateCreated ? formatDay(message.dateCreated) : '';
    if (day && day !== lastDay) {
      items.push(h('div', { class: 'day' }, h('span', null, day)));
      lastDay = day;
      lastAuthor = null;
    }
    items.push(raw ? rawView(message) : messageView(message, session, message.author !== lastAuthor, tools, reactions.get(message.sid)));
    lastAuthor = message.author;
    flushNotices(message.index);
  }
  flushNotices(Number.MAX_SAFE_INTEGER);
  if (!raw) for (const pending of state.pending) items.push(pendingView(pending, actions));
  return items;
}
