/**
 * The demo web client of twilio-e2ee. Boot: pin the server's AppKey on first use (warn if it
 * ever changes), restore the signed-in session, register this browser's device and connect.
 */
import './styles.css';
import { h, icon, mount } from './dom.js';
import { describeError } from './errors.js';
import { fingerprint } from './format.js';
import { checkAppKey, demoLogin, loadSession, pinAppKey, saveSession, type PinnedKey, type Session } from './server.js';
import { ChatSession } from './session.js';
import { ChatApp } from './views/app.js';
import { signInView } from './views/signin.js';

const root = document.getElementById('app')!;
let current: { chat: ChatSession; app: ChatApp } | null = null;

function screen(iconName: string, title: string, text: string, ...actions: HTMLElement[]): HTMLElement {
  return h(
    'div',
    { class: 'center-page' },
    h('div', { class: 'center-card', 'data-testid': 'status-screen' }, h('span', { class: 'blocker-icon' }, icon(iconName)), h('h2', null, title), h('p', null, text), actions.length ? h('div', { class: 'form-actions' }, actions) : null),
  );
}

function button(label: string, onclick: () => void, primary = true): HTMLButtonElement {
  return h('button', { class: primary ? 'btn primary' : 'btn ghost', type: 'button', onclick }, label);
}

async function stopCurrent(): Promise<void> {
  const running = current;
  current = null;
  if (!running) return;
  running.app.destroy();
  await running.chat.shutdown();
}

function showSignIn(appKey: PinnedKey, notice?: string, prefill?: Session): void {
  mount(
    root,
    signInView({
      appKey,
      notice,
      identity: prefill?.identity,
      role: prefill?.role,
      deviceName: prefill?.deviceName,
      onSignedIn: (session) => {
        saveSession(session);
        void startSession(session, appKey);
      },
    }),
  );
}

async function startSession(session: Session, appKey: PinnedKey): Promise<void> {
  await stopCurrent();
  mount(root, h('div', { class: 'center-page' }, h('div', { class: 'loading', 'data-testid': 'loading' }, h('span', { class: 'spinner' }), `Preparing ${session.identity}’s device: keys, card, connection…`)));
  let chat: ChatSession;
  try {
    chat = await ChatSession.start(session, appKey.publicKey);
  } catch (err) {
    const expired = (err as { expired?: boolean }).expired === true || describeError(err).kind === 'expired';
    if (expired) {
      saveSession(null);
      showSignIn(appKey, `Your session as ${session.identity} expired. Sign in again: this browser keeps its device and keys.`, session);
      return;
    }
    const d = describeError(err);
    if (d.kind === 'offline') {
      mount(root, screen('wifiOff', 'You are offline', 'The server cannot be reached. Your device keys are safe in this browser.', button('Try again', () => void startSession(session, appKey))));
      return;
    }
    saveSession(null);
    showSignIn(appKey, `Could not sign in as ${session.identity}: ${d.title}. ${d.detail ?? ''}`, session);
    return;
  }
  const app = new ChatApp(chat, {
    signOut: (reason) => {
      saveSession(null);
      history.replaceState(null, '', '/');
      void stopCurrent().then(() => showSignIn(appKey, reason));
    },
    signInAgain: () => {
      demoLogin(session.identity).then(
        (token) => {
          const renewed = { ...session, token };
          saveSession(renewed);
          void startSession(renewed, appKey);
        },
        (err: unknown) => {
          saveSession(null);
          void stopCurrent().then(() => showSignIn(appKey, (err as Error).message, session));
        },
      );
    },
  });
  current = { chat, app };
  mount(root, app.el);
  await app.start();
}

/** The server presents another AppKey than the one pinned here: stop and ask. */
function showKeyChanged(pinned: PinnedKey, served: { publicKey: string; appKeyId: string }): void {
  mount(
    root,
    h(
      'div',
      { class: 'center-page' },
      h(
        'div',
        { class: 'center-card tone-bad-card', 'data-testid': 'app-key-changed' },
        h('span', { class: 'blocker-icon bad' }, icon('alert')),
        h('h2', null, 'The server’s signing key changed'),
        h('p', null, 'This browser pinned the server’s AppKey the first time it was used. The server now presents a different one, so cards it signs are not trusted. Someone may be impersonating the server, or it was reset (for example, its data directory was deleted).'),
        h('dl', { class: 'key-compare' }, h('dt', null, 'Pinned'), h('dd', null, h('code', null, fingerprint(pinned.appKeyId))), h('dt', null, 'Now served'), h('dd', null, h('code', null, fingerprint(served.appKeyId)))),
        h(
          'div',
          { class: 'form-actions' },
          button('Keep the pinned key', () => mount(root, screen('lock', 'Stopped', 'Nothing was trusted. Reload when the server presents the pinned key again.')), false),
          button('Trust the new key', () => {
            const key = pinAppKey(served);
            const session = loadSession();
            if (session) void startSession(session, key);
            else showSignIn(key);
          }),
        ),
      ),
    ),
  );
}

async function boot(): Promise<void> {
  const check = await checkAppKey();
  if (check.state === 'unreachable') {
    mount(root, screen('wifiOff', 'The server cannot be reached', 'Is `npm start` running? This page retries when you press the button.', button('Try again', () => void boot())));
    return;
  }
  if (check.state === 'changed') {
    showKeyChanged(check.key, check.served);
    return;
  }
  const session = loadSession();
  if (session) await startSession(session, check.key);
  else showSignIn(check.key);
}

void boot();
