/**
 * Users on the local relay, as the SDK's User (client.user, client.getUser, participant.getUser).
 * The relay keeps no user profiles: a user's friendlyName is null and its attributes {}, as the
 * SDK shows a user who never set them; reachability is off (isOnline and isNotifiable null, the
 * client's reachabilityEnabled false); updating a profile is refused (RELAY_UNSUPPORTED), since
 * nobody would ever see the change. Subscriptions are the client's own, kept in its memory only:
 * getUser subscribes (userSubscribed), unsubscribe() ends it (userUnsubscribed).
 */
import { E2EEError, ErrorCode } from '../../shared/errors.js';
import { MAX_IDENTITY_CHARS } from '../../shared/limits.js';
import type { JSONValue } from '../conversations.js';
import { LocalEmitter } from './relay-emitter.js';
import { unsupported } from './relay-unsupported.js';

/** Users subscribed at once, beyond which the longest unused is unsubscribed: the SDK's default. */
export const USER_SUBSCRIPTIONS = 100;

export interface LocalUserEvents {
  /** Never emitted: the relay has no profiles to change. */
  updated(data: { user: LocalUser; updateReasons: string[] }): void;
  userSubscribed(user: LocalUser): void;
  userUnsubscribed(user: LocalUser): void;
}

export class LocalUser extends LocalEmitter<LocalUserEvents> {
  /** The SDK's event names, as its User carries them. */
  readonly updated = 'updated';
  readonly userSubscribed = 'userSubscribed';
  readonly userUnsubscribed = 'userUnsubscribed';
  readonly friendlyName: string | null = null;
  readonly attributes: JSONValue = {};
  readonly isOnline: boolean | null = null;
  readonly isNotifiable: boolean | null = null;

  constructor(
    readonly identity: string,
    private readonly users: LocalUsers,
  ) {
    super();
  }

  get isSubscribed(): boolean {
    return this.users.isSubscribed(this);
  }

  async updateFriendlyName(_friendlyName: string): Promise<this> {
    throw unsupported('user profiles: a friendly name would be stored nowhere');
  }

  async updateAttributes(_attributes: JSONValue): Promise<this> {
    throw unsupported('user profiles: user attributes would be stored nowhere');
  }

  async unsubscribe(): Promise<void> {
    this.users.unsubscribe(this);
  }

  /** @internal */
  deliver<K extends keyof LocalUserEvents>(event: K, ...args: Parameters<LocalUserEvents[K]>): void {
    this.emit(event, ...args);
  }
}

/** One client's users: itself, and the others it subscribed to, most recently asked for last. */
export class LocalUsers {
  private self: LocalUser | undefined;
  private readonly known = new Map<string, LocalUser>();
  private readonly subscribed = new Set<LocalUser>();

  constructor(
    private readonly identity: () => string,
    /** Tells the client (its userSubscribed, userUnsubscribed events). */
    private readonly announce: (event: 'userSubscribed' | 'userUnsubscribed', user: LocalUser) => void,
  ) {}

  /** The signed-in user, subscribed from the start (the SDK's client.user). */
  get myself(): LocalUser {
    if (!this.self) {
      this.self = new LocalUser(this.identity(), this);
      this.subscribed.add(this.self);
    }
    return this.self;
  }

  /** The user of `identity`, subscribed (the SDK's getUser). */
  get(identity: string): LocalUser {
    if (typeof identity !== 'string' || identity.length === 0 || identity.length > MAX_IDENTITY_CHARS) {
      throw new E2EEError(ErrorCode.INVALID_ARGUMENT, `"identity" must be a string of 1..${MAX_IDENTITY_CHARS} characters`);
    }
    if (identity === this.identity()) return this.myself;
    const user = this.known.get(identity) ?? new LocalUser(identity, this);
    this.known.delete(identity);
    this.known.set(identity, user);
    if (!this.subscribed.has(user)) {
      this.subscribed.add(user);
      this.tell('userSubscribed', user);
    }
    for (const [oldest, old] of this.known) {
      if (this.known.size <= USER_SUBSCRIPTIONS) break;
      this.known.delete(oldest);
      this.unsubscribe(old);
    }
    return user;
  }

  /** The users subscribed to, the signed-in user aside (the SDK's getSubscribedUsers). */
  others(): LocalUser[] {
    return [...this.known.values()].filter((user) => this.subscribed.has(user));
  }

  isSubscribed(user: LocalUser): boolean {
    return this.subscribed.has(user);
  }

  unsubscribe(user: LocalUser): void {
    if (this.subscribed.delete(user)) this.tell('userUnsubscribed', user);
  }

  private tell(event: 'userSubscribed' | 'userUnsubscribed', user: LocalUser): void {
    user.deliver(event, user);
    this.announce(event, user);
  }
}
