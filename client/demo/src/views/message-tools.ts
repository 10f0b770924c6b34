/**
 * What people do to a message in the timeline: edit their own (the wrapper seals the new text as
 * a signed edit bound to the original) and react to any verified one (a reaction is a sealed
 * message of its own, see reactions.ts), and the reaction chips under each message. One edit box
 * and one emoji picker open at a time in the open conversation.
 */
import type { Message } from '@twilio/conversations';
import { e2eeInfo } from '../../../index.js';
import { h, icon, type Child } from '../dom.js';
import type { Described } from '../errors.js';
import { formatTime, listNames } from '../format.js';
import { REACTIONS, type ReactionGroup } from '../reactions.js';
import type { ChatSession } from '../session.js';

/** An error in words (see errors.ts), with what the user can do about it. */
export function errorBox(error: Described, testid: string, ...actions: Child[]): HTMLElement {
  return h(
    'div',
    { class: 'send-error', role: 'alert', 'data-testid': testid },
    icon('alert', 'icon icon-sm'),
    h('div', null, h('b', null, error.title), error.detail ? h('span', null, ` ${error.detail}`) : null),
    h('div', { class: 'send-error-actions' }, actions),
  );
}

/**
 * "edited" beside the time of a message changed after it was sent. The time comes from the
 * transport (Twilio's dateUpdated); the badge beside it says whether this version verified.
 */
export function editedMark(message: Message): HTMLElement | null {
  const { dateCreated, dateUpdated } = message;
  if (!dateCreated || !dateUpdated || dateUpdated.getTime() <= dateCreated.getTime()) return null;
  return h('span', { class: 'msg-edited', 'data-testid': 'edited', title: `Edited at ${formatTime(dateUpdated)}` }, 'edited');
}

export class MessageTools {
  private editing: { index: number; draft: string; saving: boolean } | null = null;
  /** The message whose emoji picker is open. */
  private picking: number | null = null;
  /** The last edit or reaction that failed, shown under its message. */
  private failed: { index: number; error: Described } | null = null;

  constructor(
    private readonly session: ChatSession,
    private readonly sid: string,
    /** Redraws the timeline, then focuses the element with this `data-focus` key, if given. */
    private readonly redraw: (focus?: string) => void,
  ) {}

  /** The edit box, in place of the bubble while this message is being edited; null otherwise. */
  editor(message: Message): HTMLElement | null {
    const editing = this.editing;
    if (editing?.index !== message.index) return null;
    const input = h('textarea', {
      class: 'edit-input',
      rows: Math.min(editing.draft.split('\n').length, 6),
      'aria-label': 'Edit message',
      'data-testid': 'edit-input',
      'data-focus': `edit-input:${message.index}`,
      disabled: editing.saving,
      value: editing.draft,
    });
    input.addEventListener('input', () => (editing.draft = input.value));
    input.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') {
        event.preventDefault();
        this.cancelEdit();
      } else if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        void this.saveEdit();
      }
    });
    const hint = editing.saving ? [h('span', { class: 'spinner' }), 'Encrypting and signing the edit…'] : 'Enter to save · Esc to cancel';
    return h('div', { class: 'edit-box', 'data-testid': 'edit-box' }, input, h('div', { class: 'edit-hint' }, hint));
  }

  /** React (any verified message) and Edit (your own), shown on hover or keyboard focus; null when neither applies. */
  actions(message: Message): HTMLElement | null {
    if (e2eeInfo(message).status !== 'verified' || this.editing?.index === message.index) return null;
    const { index } = message;
    const open = this.picking === index;
    return h(
      'div',
      { class: `msg-actions${open ? ' open' : ''}` },
      h('button', { class: 'msg-action', type: 'button', title: 'React', 'aria-expanded': String(open), 'data-testid': 'react', 'data-focus': `react:${index}`, onclick: () => this.togglePicker(index) }, icon('smile', 'icon icon-xs'), 'React'),
      message.author === this.session.identity
        ? h('button', { class: 'msg-action', type: 'button', title: 'Edit (end-to-end encrypted and signed again)', 'data-testid': 'edit-message', 'data-focus': `edit:${index}`, onclick: () => this.startEdit(message) }, icon('pencil', 'icon icon-xs'), 'Edit')
        : null,
    );
  }

  /** The emoji to react with, while the picker of this message is open. */
  picker(message: Message): HTMLElement | null {
    const { index } = message;
    if (this.picking !== index) return null;
    return h(
      'div',
      {
        class: 'reaction-picker',
        role: 'group',
        'aria-label': 'React with',
        'data-testid': 'reaction-picker',
        onkeydown: (event) => {
          if ((event as KeyboardEvent).key === 'Escape') this.togglePicker(index);
        },
      },
      REACTIONS.map((emoji, i) =>
        h('button', { class: 'reaction-option', type: 'button', title: `React with ${emoji}`, 'aria-label': `React with ${emoji}`, 'data-testid': 'reaction-option', 'data-focus': `pick:${index}:${i}`, onclick: () => void this.react(message, emoji) }, emoji),
      ),
    );
  }

  /** The reactions under a message, "👍 2" with who reacted as the tooltip; pressing one reacts the same way (once per person). */
  chips(message: Message, groups: readonly ReactionGroup[] | undefined): HTMLElement | null {
    if (!groups?.length) return null;
    const me = this.session.identity;
    const verified = e2eeInfo(message).status === 'verified';
    return h(
      'div',
      { class: 'reactions', 'data-testid': 'reactions' },
      groups.map(({ emoji, who }) => {
        const names = listNames(who.map((identity) => (identity === me ? 'you' : identity)));
        return h(
          'button',
          {
            class: `reaction${who.includes(me) ? ' mine' : ''}`,
            type: 'button',
            title: `${emoji} by ${names}`,
            'aria-label': `${emoji} ${who.length}, by ${names}`,
            'aria-pressed': String(who.includes(me)),
            'data-testid': 'reaction',
            'data-emoji': emoji,
            'data-focus': `chip:${message.index}:${emoji}`,
            disabled: !verified,
            onclick: () => void this.react(message, emoji),
          },
          emoji,
          ' ',
          h('span', { class: 'reaction-count' }, who.length),
        );
      }),
    );
  }

  /** Why the last edit or reaction of this message failed. */
  problem(message: Message): HTMLElement | null {
    if (this.failed?.index !== message.index) return null;
    const dismiss = () => {
      this.failed = null;
      this.redraw();
    };
    return errorBox(this.failed.error, 'message-error', h('button', { class: 'btn sm ghost', type: 'button', onclick: dismiss }, 'Dismiss'));
  }

  private startEdit(message: Message): void {
    this.editing = { index: message.index, draft: message.body ?? '', saving: false };
    this.picking = null;
    this.failed = null;
    this.redraw(`edit-input:${message.index}`);
  }

  private cancelEdit(): void {
    const index = this.editing?.index;
    this.editing = null;
    this.failed = null;
    this.redraw(`edit:${index}`);
  }

  private async saveEdit(): Promise<void> {
    const editing = this.editing;
    if (!editing || editing.saving) return;
    const body = editing.draft.trim();
    if (!body) return; // an edit cannot empty a message
    if (body === this.session.conversations.get(this.sid)?.messages.get(editing.index)?.body) return this.cancelEdit();
    editing.saving = true;
    this.failed = null;
    this.redraw();
    const error = await this.session.edit(this.sid, editing.index, body);
    if (this.editing !== editing) return;
    editing.saving = false;
    if (error) this.failed = { index: editing.index, error };
    else this.editing = null;
    this.redraw(error ? `edit-input:${editing.index}` : `edit:${editing.index}`);
  }

  private togglePicker(index: number): void {
    const open = this.picking !== index;
    this.picking = open ? index : null;
    this.redraw(open ? `pick:${index}:0` : `react:${index}`);
  }

  private async react(message: Message, emoji: string): Promise<void> {
    const fromPicker = this.picking === message.index;
    this.picking = null;
    this.failed = null;
    this.redraw(fromPicker ? `react:${message.index}` : undefined);
    const error = await this.session.react(this.sid, message, emoji);
    if (!error) return;
    this.failed = { index: message.index, error };
    this.redraw();
  }
}
