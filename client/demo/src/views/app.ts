/**
 * The signed-in app: conversation list, the open conversation (timeline and composer), the
 * details panel (people, devices, safety numbers), connection banners, and the blocking
 * states (expired session, revoked device).
 */
import { avatar, h, icon, mount, redrawKeepingFocus } from '../dom.js';
import { e2eeInfo, type OrgKeyChange } from '../../../index.js';
import { formatWhen, isAgent, listNames, plural, safetyGroups, unverifiedSummary } from '../format.js';
import type { ChatSession, ConversationState } from '../session.js';
import { filesSummary } from '../files.js';
import { Composer } from './composer.js';
import { participantsView, safetyView, type DetailsActions } from './details.js';
import { openDevicesDialog } from './devices.js';
import { dialogForm, openDialog, showToast } from './dialogs.js';
import { directoryAlertBanners } from './directory-alerts.js';
import { MessageTools } from './message-tools.js';
import { statusFlag, timelineItems, type TimelineActions } from './timeline.js';

export interface AppCallbacks {
  signOut(reason?: string): void;
  /** A new demo session for the same identity (after expiry). */
  signInAgain(): void;
}

const DEVICE_REFRESH_MS = 20_000;

/** Identities typed into a field: separated by commas or spaces. */
function parseIdentities(text: string): string[] {
  return [...new Set(text.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean))];
}

/**
 * The header chip: "End-to-end encrypted" only when every loaded message verified; otherwise what
 * the conversation holds, e.g. "2 unencrypted messages".
 */
function encryptionChip(state: ConversationState): HTMLElement {
  const tally = state.tally;
  const unverified = unverifiedSummary(tally);
  if (!unverified) {
    return h('span', { class: 'e2ee-chip', 'data-testid': 'e2ee-chip', 'data-state': 'verified', title: 'Every message loaded here was decrypted and verified against its sender’s device.' }, icon('lock', 'icon icon-xs'), 'End-to-end encrypted');
  }
  const loaded = tally.verified + tally.unencrypted + tally.failed;
  return h(
    'span',
    {
      class: `e2ee-chip ${tally.failed ? 'chip-bad' : 'chip-warn'}`,
      'data-testid': 'e2ee-chip',
      'data-state': tally.failed ? 'failed' : 'unencrypted',
      title: `Of the ${plural(loaded, 'message')} loaded here: ${tally.verified} verified, ${unverified}. Messages you send are still end-to-end encrypted.`,
    },
    icon(tally.failed ? 'alert' : 'unlock', 'icon icon-xs'),
    unverified,
  );
}

export class ChatApp {
  readonly el: HTMLElement;
  private selected: string | null = null;
  /** Editing and reacting in the open conversation. */
  private tools: MessageTools | null = null;
  private raw = false;
  private detailsOpen = false;
  private safetyFor: string | null = null;
  private backupDismissed = false;
  private readonly drafts = new Map<string, { text: string; files: File[] }>();
  private composer: Composer | null = null;
  private readonly listEl = h('nav', { class: 'conv-list', 'data-testid': 'conversation-list', 'aria-label': 'Conversations' });
  private readonly meEl = h('footer', { class: 'me' });
  private readonly bannersEl = h('div', { class: 'banners' });
  private readonly mainEl = h('main', { class: 'main' });
  private readonly detailsEl = h('aside', { class: 'details', 'aria-label': 'Conversation details' });
  private readonly blockerEl = h('div', { class: 'blocker-root' });
  private readonly modeEl = h('span', { class: 'mode-pill' });
  private headerEl: HTMLElement | null = null;
  private timelineEl: HTMLElement | null = null;
  private composerNoticeEl: HTMLElement | null = null;
  private readonly unsubscribe: Array<() => void> = [];

  constructor(
    private readonly session: ChatSession,
    private readonly callbacks: AppCallbacks,
  ) {
    const agent = session.role === 'agent';
    this.el = h(
      'div',
      { class: `shell${agent ? ' role-agent' : ''}`, 'data-testid': 'app' },
      h(
        'aside',
        { class: 'sidebar' },
        h('header', { class: 'sidebar-head' }, h('div', { class: 'brand' }, h('span', { class: 'brand-mark' }, icon('lock')), h('span', null, 'Secure Chat')), this.modeEl),
        agent
          ? h('div', { class: 'agent-card' }, icon('headset'), h('div', null, h('b', null, 'Support agent view'), h('span', null, `Participants add you as ${session.identity}. Earlier messages arrive from the organization’s history, verified.`)))
          : h('div', { class: 'sidebar-actions' }, h('button', { class: 'btn primary block', type: 'button', 'data-testid': 'new-conversation', onclick: () => this.newConversation() }, icon('plus'), 'New conversation')),
        h('div', { class: 'section-label' }, agent ? 'Assigned to you' : 'Conversations'),
        this.listEl,
        this.meEl,
      ),
      this.mainEl,
      this.detailsEl,
      this.blockerEl,
    );
    this.unsubscribe.push(
      session.onChange((scope) => {
        if (scope === 'list') {
          if (this.selected && !session.conversations.has(this.selected)) this.select(null); // removed from it
          else this.renderList();
        }
        else if (scope === 'status') this.renderStatus();
        else if (scope === 'devices') this.renderMe();
        else if (scope.sid === this.selected) this.renderConversation();
      }),
      session.onToast((t) => showToast(t.text, t.tone)),
    );
    const onHash = () => this.route();
    window.addEventListener('hashchange', onHash);
    // Contacts' devices are looked up again now and then (and when the window gets focus), so a
    // new or removed device shows up as a key-change notice without waiting for the next send.
    const refresh = () => {
      if (this.selected && !document.hidden) void session.refreshDevices(this.selected);
    };
    const timer = setInterval(refresh, DEVICE_REFRESH_MS);
    window.addEventListener('focus', refresh);
    this.unsubscribe.push(() => {
      window.removeEventListener('hashchange', onHash);
      window.removeEventListener('focus', refresh);
      clearInterval(timer);
    });
    mount(this.modeEl, session.mode === 'twilio' ? 'Twilio' : 'Local relay');
    this.modeEl.title = session.mode === 'twilio' ? 'Connected to Twilio Conversations' : 'Local relay standing in for Twilio (no Twilio account configured)';
    this.renderList();
    this.renderStatus();
    this.renderMain();
  }

  /** Loads the conversations, then opens the one in the URL, if any. */
  async start(): Promise<void> {
    this.renderList();
    try {
      await this.session.loadConversations();
    } catch (err) {
      showToast(`Conversations could not be loaded: ${(err as Error).message}`, 'bad');
    }
    this.route();
  }

  destroy(): void {
    for (const off of this.unsubscribe.splice(0)) off();
    this.el.remove();
  }

  // ---- navigation

  private route(): void {
    const sid = /^#\/c\/(.+)$/.exec(location.hash)?.[1];
    const target = sid && this.session.conversations.has(decodeURIComponent(sid)) ? decodeURIComponent(sid) : null;
    if (target !== this.selected) this.select(target, false);
  }

  select(sid: string | null, push = true): void {
    if (this.selected && this.timelineEl) this.saveDraft();
    this.selected = sid;
    this.session.selected = sid;
    this.tools = sid ? new MessageTools(this.session, sid, (focus) => this.renderConversation(false, focus)) : null;
    this.safetyFor = null;
    if (push) history.replaceState(null, '', sid ? `#/c/${encodeURIComponent(sid)}` : '#/');
    this.el.classList.toggle('show-main', sid !== null);
    this.renderList();
    this.renderMain();
    if (sid) void this.session.open(sid);
  }

  private get state(): ConversationState | undefined {
    return this.selected ? this.session.conversations.get(this.selected) : undefined;
  }

  // ---- sidebar

  private renderList(): void {
    const list = this.session.list;
    if (list.length === 0) {
      mount(
        this.listEl,
        h(
          'div',
          { class: 'list-empty' },
          this.session.role === 'agent'
            ? ['No conversations yet.', h('br'), 'Ask a participant to add ', h('b', null, this.session.identity), '.']
            : ['No conversations yet.', h('br'), 'Start one and add people by name.'],
        ),
      );
      return;
    }
    mount(
      this.listEl,
      list.map((state) => {
        const last = state.last;
        const others = state.participants.filter((p) => p !== this.session.identity);
        const who = last ? (last.author === this.session.identity ? 'You' : last.author) : null;
        const lastStatus = last ? e2eeInfo(last).status : null;
        const text = !last ? 'No messages yet' : lastStatus === 'failed' ? 'Message could not be verified' : last.body || filesSummary(last);
        const unverified = unverifiedSummary(state.tally);
        return h(
          'button',
          {
            type: 'button',
            class: `conv-item${state.sid === this.selected ? ' active' : ''}${state.unread ? ' unread' : ''}`,
            'data-testid': 'conversation',
            'data-sid': state.sid,
            'aria-current': state.sid === this.selected ? 'true' : null,
            onclick: () => this.select(state.sid),
          },
          others.length === 1 ? avatar(others[0]!) : h('span', { class: 'avatar avatar-md avatar-group', 'aria-hidden': 'true' }, icon('chat', 'icon icon-sm')),
          h(
            'div',
            { class: 'conv-text' },
            h(
              'div',
              { class: 'conv-title' },
              h('span', { class: 'conv-name' }, state.title),
              unverified ? h('span', { class: `conv-warning ${state.tally.failed ? 'bad' : 'warn'}`, title: `This conversation holds ${unverified}`, 'aria-label': unverified, 'data-testid': 'conversation-warning' }, icon('alert', 'icon icon-xs')) : null,
              h('span', { class: 'conv-time' }, formatWhen(state.lastActivity)),
            ),
            h(
              'div',
              { class: 'conv-preview', 'data-testid': 'preview', 'data-status': lastStatus ?? '' },
              lastStatus && lastStatus !== 'verified' ? statusFlag(lastStatus) : null,
              h('span', { class: 'conv-snippet' }, who ? `${who}: ${text}` : text),
              state.unread ? h('span', { class: 'unread-count', 'data-testid': 'unread' }, String(state.unread)) : null,
            ),
          ),
        );
      }),
    );
  }

  private renderMe(): void {
    const s = this.session;
    const offline = !s.browserOnline || s.status === 'offline';
    const statusText = offline ? 'Offline' : s.status === 'online' ? 'Connected' : s.status === 'reconnecting' ? 'Reconnecting…' : 'Connecting…';
    mount(
      this.meEl,
      avatar(s.identity),
      h(
        'div',
        { class: 'me-text' },
        h('div', { class: 'me-name', 'data-testid': 'me' }, s.identity, s.role === 'agent' ? h('span', { class: 'pill' }, 'Agent') : null),
        h('div', { class: 'me-sub' }, h('span', { class: `dot ${offline ? 'dot-bad' : s.status === 'online' ? 'dot-ok' : 'dot-warn'}`, 'data-testid': 'connection', 'data-state': offline ? 'offline' : s.status }), `${statusText} · ${s.deviceName}`),
      ),
      h('button', { class: 'icon-btn', type: 'button', title: 'Your devices', 'aria-label': 'Your devices', 'data-testid': 'devices-button', onclick: () => openDevicesDialog(s, () => this.callbacks.signOut('This device was revoked and its keys deleted.')) }, icon('devices')),
      h('button', { class: 'icon-btn', type: 'button', title: 'Sign out', 'aria-label': 'Sign out', 'data-testid': 'sign-out', onclick: () => this.callbacks.signOut() }, icon('logout')),
    );
  }

  // ---- status: connection banners and blocking problems

  private renderStatus(): void {
    this.renderMe();
    const s = this.session;
    const banners: HTMLElement[] = [];
    if (!s.browserOnline || s.status === 'offline') {
      banners.push(h('div', { class: 'banner tone-warn', role: 'status', 'data-testid': 'offline-banner' }, icon('wifiOff'), h('span', null, h('b', null, 'You are offline. '), 'New messages arrive once the connection is back; until then nothing can be sent.')));
    } else if (s.status === 'reconnecting') {
      banners.push(h('div', { class: 'banner tone-warn', role: 'status', 'data-testid': 'offline-banner' }, h('span', { class: 'spinner' }), h('span', null, h('b', null, 'Reconnecting… '), 'Messages sent meanwhile will be delivered when the connection is back.')));
    }
    banners.push(...directoryAlertBanners(s));
    if (s.orgKeyChange) banners.push(this.orgKeyBanner(s.orgKeyChange));
    if (s.backupProblem && !this.backupDismissed) {
      banners.push(
        h(
          'div',
          { class: 'banner tone-warn', role: 'status' },
          icon('history'),
          h('span', null, h('b', null, 'History backup failed. '), `A message could not be backed up to the organization (${s.backupProblem.error.code}); people added later may not see it.`),
          h('button', { class: 'icon-btn sm', type: 'button', 'aria-label': 'Dismiss', onclick: () => ((this.backupDismissed = true), this.renderStatus()) }, icon('x')),
        ),
      );
    }
    mount(this.bannersEl, banners);
    if (s.problem) {
      const expired = s.problem.kind === 'expired';
      mount(
        this.blockerEl,
        h(
          'div',
          { class: 'blocker', role: 'alertdialog', 'aria-modal': 'true', 'data-testid': expired ? 'session-expired' : 'device-revoked' },
          h(
            'div',
            { class: 'blocker-card' },
            h('span', { class: 'blocker-icon' }, icon(expired ? 'refresh' : 'alert')),
            h('h2', null, s.problem.title),
            h('p', null, s.problem.detail ?? ''),
            h(
              'div',
              { class: 'form-actions' },
              h('button', { class: 'btn ghost', type: 'button', onclick: () => this.callbacks.signOut() }, 'Sign out'),
              h('button', { class: 'btn primary', type: 'button', 'data-testid': 'sign-in-again', onclick: () => this.callbacks.signInAgain() }, `Sign in again as ${s.identity}`),
            ),
          ),
        ),
      );
    } else mount(this.blockerEl);
  }

  /** The organization key changed: whoever holds the new one would read backed-up messages, so backups wait for the user. */
  private orgKeyBanner({ previous, current }: OrgKeyChange): HTMLElement {
    const groups = (digits: string) => safetyGroups(digits).join(' ');
    const canAccept = current.status === 'changed';
    return h(
      'div',
      { class: 'banner tone-bad org-key-banner', role: 'alert', 'data-testid': 'org-key-changed' },
      icon('key'),
      h(
        'span',
        null,
        h('b', null, 'The organization key changed. '),
        canAccept
          ? 'Whoever holds the new key could read the messages backed up to the organization’s history. Your backups are held until you accept it; check its fingerprint with your administrator first. '
          : 'It matches none of the keys this app was configured with, so nothing is backed up. ',
        previous ? h('span', { class: 'key-line' }, 'Trusted: ', h('code', null, groups(previous.fingerprint))) : null,
        h('span', { class: 'key-line' }, 'Now: ', h('code', { 'data-testid': 'org-key-new-fingerprint' }, groups(current.fingerprint))),
      ),
      canAccept
        ? h(
            'button',
            {
              class: 'btn sm',
              type: 'button',
              'data-testid': 'accept-org-key',
              onclick: () => void this.session.acceptOrganizationKey().catch((err: unknown) => showToast(`The key could not be accepted: ${(err as Error).message}`, 'bad')),
            },
            'Accept new key',
          )
        : null,
    );
  }

  // ---- main area

  private renderMain(): void {
    const state = this.state;
    this.headerEl = this.timelineEl = this.composerNoticeEl = this.composer = null;
    if (!state) {
      const agent = this.session.role === 'agent';
      mount(
        this.mainEl,
        this.bannersEl,
        h(
          'div',
          { class: 'empty-main' },
          h('div', { class: 'empty-art' }, icon(agent ? 'headset' : 'lock')),
          h('h2', null, agent ? 'Conversations you are added to appear here' : 'Private conversations, on Twilio'),
          h(
            'p',
            null,
            agent
              ? `When a participant adds ${this.session.identity}, open the conversation to read its history: every message verified against its original sender.`
              : 'Messages are encrypted in this browser for every device of every participant, and verified when they arrive.',
          ),
          agent ? null : h('button', { class: 'btn primary', type: 'button', onclick: () => this.newConversation() }, icon('plus'), 'New conversation'),
        ),
      );
      mount(this.detailsEl);
      this.el.classList.remove('details-open');
      return;
    }
    this.headerEl = h('header', { class: 'conv-header' });
    this.timelineEl = h('div', { class: `timeline${this.raw ? ' raw' : ''}`, 'data-testid': 'timeline', 'aria-label': 'Messages' });
    this.composerNoticeEl = h('div', { class: 'composer-notice' });
    const draft = this.drafts.get(state.sid);
    const composer = new Composer({
      text: draft?.text ?? '',
      files: draft?.files ?? [],
      send: (text, files) => {
        this.drafts.delete(state.sid);
        void this.session.send(state.sid, text, files);
      },
    });
    this.composer = composer;
    const wrap = h('div', { class: 'composer-wrap' }, this.composerNoticeEl, composer.form);
    composer.acceptDrops(this.timelineEl);
    composer.acceptDrops(wrap);
    mount(this.mainEl, this.bannersEl, this.headerEl, this.timelineEl, wrap);
    this.renderConversation(true);
    if (matchMedia('(min-width: 761px)').matches) composer.focus();
  }

  private saveDraft(): void {
    if (this.selected && this.composer) this.drafts.set(this.selected, { text: this.composer.text, files: this.composer.chosen });
  }

  /** Redraws header, timeline, composer notice and details of the open conversation; `focus` is a timeline element's data-focus key. */
  private renderConversation(scrollToEnd = false, focus?: string): void {
    const state = this.state;
    const tools = this.tools;
    if (!state || !tools || !this.headerEl || !this.timelineEl || !this.composerNoticeEl) return;
    const s = this.session;
    const others = state.participants.filter((p) => p !== s.identity);
    const agents = others.filter(isAgent);
    const subtitle = others.length === 0 ? 'Only you so far: add people' : `${plural(state.participants.length, 'person', 'people')}${agents.length ? ` · with ${listNames(agents)}` : ''}`;
    const rawSwitch = h(
      'button',
      { class: 'switch', type: 'button', role: 'switch', 'aria-checked': String(this.raw), 'data-testid': 'raw-toggle', title: 'Show each message as the envelope Twilio stores', onclick: () => this.toggleRaw() },
      h('span', { class: 'switch-track' }, h('span', { class: 'switch-thumb' })),
      icon('eye', 'icon icon-sm switch-icon'),
      h('span', { class: 'switch-label' }, 'What Twilio sees'),
    );
    mount(
      this.headerEl,
      h('button', { class: 'icon-btn back', type: 'button', 'aria-label': 'Back to conversations', onclick: () => this.select(null) }, icon('back')),
      h(
        'div',
        { class: 'conv-head-text' },
        h('h1', { 'data-testid': 'conversation-title' }, state.title),
        h('div', { class: 'conv-head-sub' }, encryptionChip(state), h('span', null, subtitle)),
      ),
      h(
        'div',
        { class: 'conv-actions' },
        rawSwitch,
        h('button', { class: 'icon-btn', type: 'button', title: 'Add people', 'aria-label': 'Add people', 'data-testid': 'add-participant', onclick: () => this.addPeople() }, icon('userPlus')),
        h('button', { class: `icon-btn${this.detailsOpen ? ' active' : ''}`, type: 'button', title: 'People and safety numbers', 'aria-label': 'Details', 'data-testid': 'details-button', onclick: () => this.toggleDetails() }, icon('info')),
      ),
    );

    // Timeline: keep the reader's place unless they were at the end.
    const t = this.timelineEl;
    const atEnd = scrollToEnd || t.scrollHeight - t.scrollTop - t.clientHeight < 48;
    const fromBottom = t.scrollHeight - t.scrollTop;
    const actions: TimelineActions = {
      showSafetyNumber: (identity) => this.showSafety(identity),
      retry: (pending) => void this.session.retry(state.sid, pending),
      discard: (pending) => this.session.discard(state.sid, pending),
      loadEarlier: () => void this.session.loadEarlier(state.sid),
    };
    redrawKeepingFocus(
      t,
      () => {
        if (state.loading && state.messages.size <= 1) {
          mount(t, h('div', { class: 'loading center' }, h('span', { class: 'spinner' }), s.role === 'agent' ? 'Decrypting and verifying history…' : 'Decrypting…'));
        } else if (state.loadError) {
          mount(t, h('div', { class: 'callout tone-bad' }, icon('alert'), h('span', null, h('b', null, `${state.loadError.title}. `), state.loadError.detail ?? '')));
        } else {
          const items = timelineItems(state, s, this.raw, actions, tools);
          const hasMessages = state.messages.size > 0 || state.pending.length > 0;
          mount(t, hasMessages || state.notices.length ? items : h('div', { class: 'timeline-empty' }, icon('lock'), h('p', null, 'Messages here are end-to-end encrypted. Say hello!')));
        }
      },
      focus,
    );
    t.scrollTop = atEnd ? t.scrollHeight : t.scrollHeight - fromBottom;

    // Who cannot receive messages yet (NO_CARDS before it happens).
    const noDevice = others.filter((p) => state.deviceCounts.get(p) === 0);
    mount(
      this.composerNoticeEl,
      noDevice.length
        ? h('div', { class: 'callout tone-warn compact', 'data-testid': 'no-device-warning' }, icon('alert'), h('span', null, h('b', null, `${listNames(noDevice)} ${noDevice.length > 1 ? 'have' : 'has'} no device yet. `), 'Sending waits until they sign in once.'))
        : null,
    );
    this.renderDetails();
  }

  private toggleRaw(): void {
    this.raw = !this.raw;
    this.timelineEl?.classList.toggle('raw', this.raw);
    this.renderConversation(true);
  }

  // ---- details panel

  private toggleDetails(force?: boolean): void {
    this.detailsOpen = force ?? !this.detailsOpen;
    if (!this.detailsOpen) this.safetyFor = null;
    else if (this.selected) void this.session.refreshDevices(this.selected); // show devices as they are now
    this.renderConversation();
  }

  private showSafety(identity: string | null): void {
    this.safetyFor = identity;
    this.detailsOpen = true;
    this.renderConversation();
  }

  private renderDetails(): void {
    const state = this.state;
    this.el.classList.toggle('details-open', this.detailsOpen && !!state);
    if (!state || !this.detailsOpen) {
      delete this.detailsEl.dataset.view;
      mount(this.detailsEl);
      return;
    }
    // The safety view computes its number once; redraw it only when the contact changes.
    const current = this.detailsEl.dataset.view;
    const view = this.safetyFor ? `safety:${this.safetyFor}` : 'people';
    if (view === current && this.safetyFor) return;
    this.detailsEl.dataset.view = view;
    const actions: DetailsActions = {
      showSafetyNumber: (identity) => this.showSafety(identity),
      close: () => this.toggleDetails(false),
      addPeople: () => this.addPeople(),
    };
    mount(
      this.detailsEl,
      h(
        'header',
        { class: 'details-head' },
        h('h2', null, this.safetyFor ? 'Verify' : 'Details'),
        h('button', { class: 'icon-btn', type: 'button', 'aria-label': 'Close details', onclick: () => actions.close() }, icon('x')),
      ),
      this.safetyFor ? safetyView(this.safetyFor, this.session, actions) : participantsView(state, this.session, actions),
    );
  }

  // ---- dialogs

  private newConversation(): void {
    const name = h('input', { name: 'name', placeholder: 'e.g. Weekend plans', maxlength: 100, 'data-testid': 'conversation-name' });
    const people = h('input', { name: 'people', placeholder: 'bob, carol', 'data-testid': 'conversation-people', autocomplete: 'off' });
    openDialog(
      'New conversation',
      (dialog) =>
        dialogForm(
          [
            h('label', { class: 'field' }, h('span', { class: 'label' }, 'Name (optional)'), name, h('span', { class: 'hint', 'data-testid': 'conversation-name-hint' }, 'Not encrypted: Twilio and the server can read conversation names.')),
            h('label', { class: 'field' }, h('span', { class: 'label' }, 'People'), people, h('span', { class: 'hint' }, 'Their sign-in names, separated by commas. Support agents are agent-<name>.')),
          ],
          'Create',
          async () => {
            const identities = parseIdentities(people.value).filter((i) => i !== this.session.identity);
            const sid = await this.session.createConversation(name.value.trim(), identities);
            dialog.close();
            this.select(sid);
          },
        ),
      { testid: 'new-conversation-dialog' },
    );
  }

  private addPeople(): void {
    const state = this.state;
    if (!state) return;
    const input = h('input', { name: 'identity', placeholder: 'carol or agent-sam', 'data-testid': 'participant-input', autocomplete: 'off', required: true });
    openDialog(
      `Add people to ${state.title}`,
      (dialog) =>
        dialogForm(
          [
            h('label', { class: 'field' }, h('span', { class: 'label' }, 'Who'), input, h('span', { class: 'hint' }, 'Sign-in names, separated by commas. A support agent added now can read the earlier messages through the organization’s history.')),
          ],
          'Add',
          async () => {
            const identities = parseIdentities(input.value).filter((i) => !state.participants.includes(i));
            for (const identity of identities) await this.session.addParticipant(state.sid, identity);
            dialog.close();
          },
        ),
      { testid: 'add-participant-dialog' },
    );
  }

}
