/** "Your devices": every device of the signed-in user, with revoke. */
import { h, icon, mount } from '../dom.js';
import { describeError } from '../errors.js';
import { fingerprint, formatDate } from '../format.js';
import type { ChatSession } from '../session.js';
import { openDialog, showToast } from './dialogs.js';

export function openDevicesDialog(session: ChatSession, onRevokedSelf: () => void): void {
  const list = h('ul', { class: 'devices devices-lg', 'data-testid': 'device-list' });
  const error = h('div', { class: 'form-error', role: 'alert' });

  const render = async () => {
    try {
      const cards = await session.devices();
      const mine = session.e2ee.card?.id;
      mount(
        list,
        cards.map((card) => {
          const self = card.id === mine;
          const revoke = h(
            'button',
            { class: 'btn sm danger', type: 'button', 'data-testid': 'revoke' },
            self ? 'Revoke & sign out' : 'Revoke',
          );
          revoke.addEventListener('click', () => {
            const what = self ? 'this device. Its keys are deleted and you are signed out' : `“${card.fields.deviceName || 'Unnamed device'}”. Contacts stop encrypting for it at once`;
            if (!confirm(`Revoke ${what}.`)) return;
            revoke.disabled = true;
            session
              .revoke(card.id)
              .then(({ self: revokedSelf }) => {
                if (revokedSelf) {
                  dialog.close();
                  onRevokedSelf();
                }
                else {
                  showToast('Device revoked');
                  void render();
                }
              })
              .catch((err: unknown) => {
                revoke.disabled = false;
                const { title, detail } = describeError(err);
                mount(error, detail ? `${title}: ${detail}` : title);
              });
          });
          return h(
            'li',
            { class: 'device-row', 'data-testid': 'device', 'data-card-id': card.id },
            h('span', { class: 'device-icon' }, icon('devices')),
            h(
              'div',
              { class: 'device-text' },
              h('div', { class: 'device-name' }, card.fields.deviceName || 'Unnamed device', self ? h('span', { class: 'pill pill-accent' }, 'This device') : null),
              h('div', { class: 'device-sub' }, h('code', null, fingerprint(card.id)), ` · added ${formatDate(new Date(card.fields.createdAt * 1000))}`),
            ),
            revoke,
          );
        }),
      );
    } catch (err) {
      mount(error, describeError(err).title);
    }
  };

  const dialog = openDialog(
    'Your devices',
    () => [
      h('p', { class: 'muted' }, 'Each browser you sign in with is a device with its own keys, kept in that browser only. Messages are encrypted for all of them. Revoke a device you no longer use: contacts stop encrypting for it.'),
      list,
      error,
    ],
    { testid: 'devices-dialog' },
  );
  mount(list, h('li', { class: 'loading' }, h('span', { class: 'spinner' }), 'Loading…'));
  void render();
}
