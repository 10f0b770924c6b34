/** The details panel: who is in the conversation, their devices, and safety numbers. */
import { avatar, h, icon, mount } from '../dom.js';
import { describeError } from '../errors.js';
import { fingerprint, formatDate, isAgent, plural, safetyGroups, unverifiedSummary } from '../format.js';
import type { OrganizationKeyInfo } from '../../../index.js';
import type { Card, ChatSession, ConversationState } from '../session.js';

export interface DetailsActions {
  showSafetyNumber(identity: string | null): void;
  close(): void;
  addPeople(): void;
}

function deviceRow(card: Card, note?: string): HTMLElement {
  return h(
    'li',
    { class: 'device-row', 'data-testid': 'device' },
    h('span', { class: 'device-icon' }, icon('devices')),
    h(
      'div',
      { class: 'device-text' },
      h('div', { class: 'device-name' }, card.fields.deviceName || 'Unnamed device', note ? h('span', { class: 'pill pill-accent' }, note) : null),
      h('div', { class: 'device-sub' }, h('code', null, fingerprint(card.id)), ` · added ${formatDate(new Date(card.fields.createdAt * 1000))}`),
    ),
  );
}

export function participantsView(state: ConversationState, session: ChatSession, actions: DetailsActions): HTMLElement {
  const people = [...state.participants].sort((a, b) => (a === session.identity ? -1 : b === session.identity ? 1 : a.localeCompare(b)));
  const devices = people.reduce((sum, p) => sum + (state.deviceCounts.get(p) ?? 0), 0);
  const unverified = unverifiedSummary(state.tally);
  return h(
    'div',
    { class: 'details-section' },
    h(
      'div',
      { class: 'callout tone-ok' },
      icon('lock'),
      h('span', null, h('b', null, 'End-to-end encrypted. '), devices > 0 ? `Each message is encrypted for the ${plural(devices, 'device')} of these ${plural(people.length, 'person', 'people')}.` : 'Each message is encrypted for every device of every participant.'),
    ),
    unverified
      ? h(
          'div',
          { class: `callout ${state.tally.failed ? 'tone-bad' : 'tone-warn'}`, 'data-testid': 'unverified-callout' },
          icon('alert'),
          h(
            'span',
            null,
            h('b', null, `This conversation holds ${unverified}. `),
            state.tally.unencrypted ? 'Unencrypted ones were sent without this app’s encryption: Twilio could read them, and anyone able to post could have written them. ' : '',
            state.tally.failed ? 'Ones that could not be verified have their text hidden. ' : '',
            'Messages you send are still encrypted.',
          ),
        )
      : null,
    h('div', { class: 'section-head' }, h('h3', null, `People (${people.length})`), h('button', { class: 'btn sm ghost', type: 'button', onclick: () => actions.addPeople() }, icon('userPlus', 'icon icon-sm'), 'Add')),
    h(
      'ul',
      { class: 'people', 'data-testid': 'participants' },
      people.map((identity) => {
        const count = state.deviceCounts.get(identity);
        const me = identity === session.identity;
        return h(
          'li',
          { class: 'person', 'data-testid': 'participant', 'data-identity': identity },
          avatar(identity, 'sm'),
          h(
            'div',
            { class: 'person-text' },
            h('div', { class: 'person-name' }, identity, me ? h('span', { class: 'muted' }, ' (you)') : null, isAgent(identity) ? h('span', { class: 'pill' }, 'Agent') : null),
            h('div', { class: count === 0 ? 'person-sub warn' : 'person-sub' }, count === undefined ? '…' : count === 0 ? 'No device yet: cannot receive messages' : plural(count, 'device')),
          ),
          me
            ? null
            : h('button', { class: 'btn sm ghost', type: 'button', 'data-testid': 'safety-button', title: `Safety number with ${identity}`, onclick: () => actions.showSafetyNumber(identity) }, icon('shield', 'icon icon-sm'), 'Verify'),
        );
      }),
    ),
  );
}

const ORG_KEY_STATUS: Record<OrganizationKeyInfo['status'], { tone: 'ok' | 'bad'; text: string }> = {
  pinned: { tone: 'ok', text: 'Pinned: it is the key this app was configured with.' },
  trusted: { tone: 'ok', text: 'Trusted since this device first saw it. You are warned if it ever changes.' },
  changed: { tone: 'bad', text: 'Changed since this device trusted it. Your backups are held until you accept the new key (see the warning above).' },
  untrusted: { tone: 'bad', text: 'Matches none of the keys this app was configured with: nothing is backed up.' },
};

/** The organization key: who else can read backed-up messages, its fingerprint and whether this device trusts it. */
function orgKeySection(session: ChatSession): HTMLElement {
  const section = h('section', { class: 'org-key', 'data-testid': 'org-key' }, h('h3', null, 'Organization key'), h('div', { class: 'loading' }, h('span', { class: 'spinner' }), 'Loading…'));
  session.organizationKey().then(
    (info) => {
      if (!info) {
        mount(section, h('h3', null, 'Organization key'), h('p', { class: 'muted', 'data-testid': 'org-key-status', 'data-status': 'none' }, 'This service keeps no organization history: messages are not backed up.'));
        return;
      }
      const status = ORG_KEY_STATUS[info.status];
      mount(
        section,
        h('h3', null, 'Organization key'),
        h('p', { class: 'muted' }, `Messages are also backed up for the organization’s history service (${info.identity}). Whoever holds this key can read every backed-up message, and shows earlier messages to people added later. Compare its fingerprint with the one your administrator publishes.`),
        h('div', { class: 'safety-number org-fingerprint', 'data-testid': 'org-key-fingerprint', 'aria-label': `Organization key fingerprint ${info.fingerprint}` }, safetyGroups(info.fingerprint).map((g) => h('span', null, g))),
        h('div', { class: `callout compact tone-${status.tone}`, 'data-testid': 'org-key-status', 'data-status': info.status }, icon(status.tone === 'ok' ? 'check' : 'alert'), h('span', null, status.text)),
      );
    },
    (err: unknown) => {
      const d = describeError(err);
      mount(section, h('h3', null, 'Organization key'), h('div', { class: 'callout compact tone-bad' }, icon('alert'), h('span', null, h('b', null, `${d.title}. `), d.detail ?? '')));
    },
  );
  return section;
}

/** The safety number with one contact, their devices, the "verified" mark, and the organization key. */
export function safetyView(identity: string, session: ChatSession, actions: DetailsActions): HTMLElement {
  const body = h('div', { class: 'safety-body' }, h('div', { class: 'loading' }, h('span', { class: 'spinner' }), 'Computing…'));
  const render = async () => {
    try {
      const { digits, cards } = await session.safetyNumber(identity);
      const verified = session.verifiedNumber(identity);
      const status =
        verified === digits
          ? h('div', { class: 'callout tone-ok', 'data-testid': 'safety-status' }, icon('check'), h('span', null, h('b', null, 'Verified. '), `You marked this number as matching ${identity}’s.`))
          : verified !== null
            ? h('div', { class: 'callout tone-bad', 'data-testid': 'safety-status' }, icon('alert'), h('span', null, h('b', null, 'Changed since you verified it. '), `${identity}’s devices (or yours) changed. Compare again before trusting new messages.`))
            : null;
      mount(
        body,
        h('p', { class: 'muted' }, `Compare this number with ${identity}, in person or on a call. If both screens show the same digits, the card service has not slipped in a device of its own.`),
        h('div', { class: 'safety-number', 'data-testid': 'safety-number', 'aria-label': `Safety number ${digits}` }, safetyGroups(digits).map((g) => h('span', null, g))),
        status,
        h(
          'button',
          {
            class: verified === digits ? 'btn block' : 'btn primary block',
            type: 'button',
            onclick: () => {
              session.setVerified(identity, verified === digits ? null : digits);
              void render();
            },
          },
          verified === digits ? 'Clear verified mark' : 'Mark as verified',
        ),
        h('h3', null, `${identity}’s devices (${cards.length})`),
        cards.length ? h('ul', { class: 'devices' }, cards.map((c) => deviceRow(c))) : h('p', { class: 'warn' }, `${identity} has no device yet.`),
        h('p', { class: 'fineprint' }, 'The number covers every device of either of you that this browser has seen, removed ones included: it changes when either of you adds or removes one.'),
        orgKeySection(session),
      );
    } catch (err) {
      const d = describeError(err);
      mount(body, h('div', { class: 'callout tone-bad' }, icon('alert'), h('span', null, h('b', null, `${d.title}. `), d.detail ?? '')));
    }
  };
  void render();
  return h(
    'div',
    { class: 'details-section', 'data-testid': 'safety-panel' },
    h('button', { class: 'link back-link', type: 'button', onclick: () => actions.showSafetyNumber(null) }, icon('back', 'icon icon-sm'), 'People'),
    h('div', { class: 'safety-head' }, avatar(identity, 'lg'), h('div', null, h('h3', null, identity), h('div', { class: 'muted' }, 'Safety number'))),
    body,
  );
}

export { deviceRow };
