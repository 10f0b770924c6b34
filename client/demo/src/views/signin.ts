/** The sign-in screen: the demo login (any name), as a chat user or as a support agent. */
import { h, icon, mount } from '../dom.js';
import { defaultDeviceName, fingerprint } from '../format.js';
import { isE2EEError } from '../../../index.js';
import { demoLogin, type PinnedKey, type Role, type Session } from '../server.js';

export interface SignInOptions {
  appKey: PinnedKey;
  /** A problem to show above the form (e.g. why the last session ended). */
  notice?: string;
  /** Prefill (e.g. after an expired session). */
  identity?: string;
  role?: Role;
  deviceName?: string;
  onSignedIn(session: Session): void;
}

const AGENT_PREFIX = 'agent-';

export function signInView(options: SignInOptions): HTMLElement {
  let role: Role = options.role ?? 'member';
  const name = h('input', {
    id: 'identity',
    name: 'identity',
    autocomplete: 'username',
    placeholder: 'alice',
    maxlength: 64,
    required: true,
    'data-testid': 'identity-input',
    value: (options.identity ?? '').replace(/^agent-/, ''),
  });
  const prefix = h('span', { class: 'input-prefix', hidden: role !== 'agent' }, AGENT_PREFIX);
  const device = h('input', { id: 'device', name: 'device', maxlength: 128, 'data-testid': 'device-input', value: options.deviceName || defaultDeviceName() });
  const error = h('div', { class: 'form-error', role: 'alert', 'data-testid': 'signin-error' });
  const submit = h('button', { class: 'btn primary block lg', type: 'submit', 'data-testid': 'signin-submit' }, 'Sign in');

  const roleButton = (value: Role, label: string, iconName: string, hint: string) =>
    h(
      'button',
      { type: 'button', class: 'segment', role: 'radio', 'aria-checked': String(role === value), 'data-role': value, onclick: () => setRole(value), title: hint },
      icon(iconName),
      label,
    );
  const roles = h('div', { class: 'segmented', role: 'radiogroup', 'aria-label': 'Sign in as' }, roleButton('member', 'Chat user', 'chat', 'Chat with anyone'), roleButton('agent', 'Support agent', 'headset', 'Read conversations you are added to, with their history'));
  const roleHint = h('p', { class: 'hint' });
  const setRole = (value: Role) => {
    role = value;
    for (const b of roles.querySelectorAll<HTMLElement>('.segment')) b.setAttribute('aria-checked', String(b.dataset.role === value));
    prefix.hidden = value !== 'agent';
    mount(
      roleHint,
      value === 'agent'
        ? 'Support agents sign in as agent-<name>. A participant adds you to a conversation; you then read its earlier messages, synced through the organization backup and verified.'
        : 'Start conversations and add people by name. Anyone who has signed in once can be messaged.',
    );
  };
  setRole(role);

  const form = h(
    'form',
    { class: 'form signin-form', 'data-testid': 'signin-form' },
    h('div', { class: 'field' }, h('span', { class: 'label' }, 'Sign in as'), roles, roleHint),
    h('label', { class: 'field', for: 'identity' }, h('span', { class: 'label' }, 'Your name'), h('div', { class: 'input-group' }, prefix, name)),
    h('label', { class: 'field', for: 'device' }, h('span', { class: 'label' }, 'This device'), device, h('span', { class: 'hint' }, 'Shown to your contacts next to your messages.')),
    error,
    submit,
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const raw = name.value.trim();
    if (!raw) return;
    const identity = role === 'agent' && !raw.startsWith(AGENT_PREFIX) ? AGENT_PREFIX + raw : raw;
    submit.disabled = true;
    mount(submit, 'Signing in…');
    mount(error);
    demoLogin(identity)
      .then((token) => options.onSignedIn({ identity, token, role: identity.startsWith(AGENT_PREFIX) ? 'agent' : 'member', deviceName: device.value.trim() }))
      .catch((err: unknown) => {
        mount(error, isE2EEError(err) ? err.message : `Sign-in failed: ${(err as Error).message}`);
        submit.disabled = false;
        mount(submit, 'Sign in');
      });
  });

  return h(
    'div',
    { class: 'signin-page' },
    h(
      'div',
      { class: 'signin-card' },
      h(
        'section',
        { class: 'signin-hero' },
        h('div', { class: 'brand brand-lg' }, h('span', { class: 'brand-mark' }, icon('lock')), h('span', null, 'Secure Chat')),
        h('h1', null, 'End-to-end encrypted chat on Twilio Conversations'),
        h(
          'ul',
          { class: 'feature-list' },
          h('li', null, icon('key'), h('span', null, h('b', null, 'Keys stay on this device. '), 'They are generated in your browser and never sent anywhere.')),
          h('li', null, icon('shield'), h('span', null, h('b', null, 'Every message is verified. '), 'Each one is signed by the sender’s device; the badge shows the result.')),
          h('li', null, icon('eye'), h('span', null, h('b', null, 'Twilio sees only envelopes. '), 'Switch on “What Twilio sees” in any conversation.')),
          h('li', null, icon('history'), h('span', null, h('b', null, 'History for support. '), 'Agents added later read earlier messages, still verified.')),
        ),
      ),
      h(
        'section',
        { class: 'signin-main' },
        h('h2', null, 'Sign in'),
        h('p', { class: 'muted' }, 'Demo login: pick any name, no password. Open a second browser window (or a private one) to chat with yourself.'),
        options.notice ? h('div', { class: 'callout tone-warn', role: 'status', 'data-testid': 'signin-notice' }, icon('alert'), h('span', null, options.notice)) : null,
        form,
        h('p', { class: 'fineprint' }, icon('key', 'icon icon-xs'), `Server key ${fingerprint(options.appKey.appKeyId)} pinned in this browser on first use.`),
      ),
    ),
  );
}
