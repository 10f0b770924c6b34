/**
 * The red banners for directory alerts (`directoryAlert`): the card directory was caught lying.
 * Never shown as an ordinary key change. A device of this account that no one added gets a revoke
 * button; every other finding says to contact the administrator. One banner per finding about
 * the same card (the audit and monitoring may both report it).
 */
import type { DirectoryAlert } from '../../../index.js';
import { h, icon } from '../dom.js';
import type { ChatSession } from '../session.js';
import { showToast } from './dialogs.js';

const TITLES: Record<DirectoryAlert['kind'], string> = {
  'rogue-device': 'A device you don’t recognise was added to your account.',
  'unknown-event': 'Your devices were changed from somewhere else.',
  'unlogged-card': 'The server offered a device that is not in its public log.',
  'suppressed-revocation': 'A removed device is still being offered.',
  'log-rollback': 'The server went back to an older state of its device log.',
  'log-fork': 'People in your conversations are shown different devices.',
  'unexpected-recipient': 'A message was also encrypted for someone outside the conversation.',
  'unattributed-slot': 'A message was also encrypted for an unknown device.',
  'witness-missing': 'The server’s device log lacks its independent witnesses.',
};

/** One alert per kind and card: the first raised stands for the rest. */
function grouped(alerts: readonly DirectoryAlert[]): DirectoryAlert[] {
  const seen = new Set<string>();
  return alerts.filter((a) => {
    const key = `${a.kind}|${a.identity ?? ''}|${a.cardId ?? a.id}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

export function directoryAlertBanners(session: ChatSession): HTMLElement[] {
  return grouped(session.directoryAlerts).map((alert) => {
    const resolve = (action: 'revoke' | 'dismiss') => () =>
      void session.resolveDirectoryAlert(alert, action).catch((err: unknown) => showToast(`That did not work: ${(err as Error).message}`, 'bad'));
    const rogue = alert.kind === 'rogue-device' && alert.cardId !== undefined;
    // The library's message says what happened and what to do; a rogue device gets the demo's own words beside its buttons.
    const text = rogue
      ? `It is listed as one of your devices (card ${alert.cardId!.slice(0, 8)}…)${alert.messageSid ? ' and received a copy of a message sent to you' : ''}. Revoke it unless you added it yourself on another device.`
      : /administrator/.test(alert.message)
        ? alert.message
        : `${alert.message} Contact your administrator.`;
    return h(
      'div',
      { class: 'banner tone-bad directory-alert', role: 'alert', 'data-testid': 'directory-alert', 'data-kind': alert.kind },
      icon('alert'),
      h('span', null, h('b', null, `${TITLES[alert.kind]} `), text),
      rogue ? h('button', { class: 'btn sm danger', type: 'button', 'data-testid': 'revoke-rogue-device', onclick: resolve('revoke') }, 'Revoke device') : null,
      h('button', { class: 'btn sm ghost', type: 'button', 'data-testid': 'dismiss-directory-alert', onclick: resolve('dismiss') }, rogue ? 'It’s mine' : 'Dismiss'),
    );
  });
}
