/**
 * The mechanism behind the drop-in wrapper: a Proxy over the SDK's own object that answers a few
 * members itself (those that carry message content) and forwards every other one to the real
 * object, with the real object as `this`. The SDK's classes keep private state keyed by the real
 * instance, so a method called on the proxy itself would fail; forwarding with the target as
 * receiver does not. `instanceof` holds because the proxy reports the target's prototype.
 *
 * What a forwarded member returns passes through `present`, so an SDK object reached through a
 * pass-through member (participant.conversation, conversation.join() resolving to the
 * conversation) is the intercepted one too.
 */

/** Returned by an override to say "not mine: forward this member". */
export const FORWARD: unique symbol = Symbol('forward');

/** Maps a value leaving the real object (a result, an event argument) to what the app may see. */
export type Present = (value: unknown) => unknown;

/** Each proxy's way to its current real object. */
const rawObjects = new WeakMap<object, () => object>();

/**
 * A proxy whose members come from `override` first, else from the current real object
 * (`current()`, which may change: the relay hands a fresh object per event for the same message).
 */
export function intercept<T extends object>(target: T, current: () => T, override: (key: PropertyKey) => unknown, present: Present): T {
  const bound = new Map<PropertyKey, { fn: Function; forwarded: Function }>();
  const proxy = new Proxy(target, {
    get(_, key) {
      const own = override(key);
      if (own !== FORWARD) return own;
      const real = current();
      const value = Reflect.get(real, key, real);
      if (typeof value !== 'function') return present(value);
      // One forwarder per method (so `proxy.fn === proxy.fn`), calling it on the real object.
      let entry = bound.get(key);
      if (!entry || entry.fn !== value) {
        const fn = value as Function;
        entry = { fn, forwarded: (...args: unknown[]) => presentResult(fn.apply(current(), args), present) };
        bound.set(key, entry);
      }
      return entry.forwarded;
    },
    set(_, key, value) {
      const real = current();
      return Reflect.set(real, key, value, real);
    },
    has(_, key) {
      return override(key) !== FORWARD || Reflect.has(current(), key);
    },
    // A member only the proxy has (message.e2ee) is reported as the proxy's own, so that code
    // that inspects objects (a deep equality's property check) finds it too.
    getOwnPropertyDescriptor(_, key) {
      const own = Reflect.getOwnPropertyDescriptor(target, key);
      if (own || Reflect.has(current(), key)) return own;
      const value = override(key);
      return value === FORWARD ? undefined : { value, writable: false, enumerable: true, configurable: true };
    },
  });
  rawObjects.set(proxy, current);
  return proxy;
}

/** A promise's value presented, keeping a CancellablePromise's `cancel`. */
export function presentResult(result: unknown, present: Present): unknown {
  if (!(result instanceof Promise)) return present(result);
  const mapped = result.then(present);
  const cancel = (result as Promise<unknown> & { cancel?: () => void }).cancel;
  if (typeof cancel === 'function') Object.assign(mapped, { cancel: cancel.bind(result) });
  return mapped;
}

/**
 * The SDK's own object behind an intercepted one (a client, conversation, message, participant
 * or paginator): what Twilio holds, e.g. a message whose body is the envelope. Anything else is
 * returned as it is.
 */
export function unwrap<T>(value: T): T {
  const current = typeof value === 'object' && value !== null ? rawObjects.get(value) : undefined;
  return (current ? current() : value) as T;
}

/** Whether `value` is an intercepted object. */
export function isIntercepted(value: unknown): boolean {
  return typeof value === 'object' && value !== null && rawObjects.has(value);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Listener = (...args: any[]) => void;

/** The SDK's emitter methods, as the real objects (and the relay client's) have them. */
interface RawEmitter {
  on(event: string, listener: Listener): unknown;
  once?(event: string, listener: Listener): unknown;
  removeListener(event: string, listener: Listener): unknown;
  onWithReplay?(event: string, listener: Listener): unknown;
  onceWithReplay?(event: string, listener: Listener): unknown;
}

/**
 * The app's listeners on one intercepted object. Events that carry message content ("sealed":
 * messageAdded, ...) are emitted by the wrapper once the message is opened, in order; every
 * other event is subscribed on the real object, its arguments presented (a participant's
 * `conversation` is the intercepted one).
 */
export class AppListeners {
  private readonly sealedListeners = new Map<string, Set<Listener>>();
  /** The listener put on the real object for each app listener, per event (to remove it). */
  private readonly forwarded = new Map<string, Map<Listener, Listener>>();

  constructor(
    private readonly raw: () => RawEmitter,
    private readonly sealed: ReadonlySet<string>,
    private readonly present: Present,
    private readonly proxy: () => object,
  ) {}

  /** The emitter members of the proxy; FORWARD for the others. */
  member(key: PropertyKey): unknown {
    switch (key) {
      case 'on':
      case 'addListener':
      case 'onWithReplay':
      case 'addListenerWithReplay':
        return (event: string, listener: Listener) => this.add(event, listener, false, key.toString().endsWith('WithReplay'));
      case 'once':
      case 'onceWithReplay':
        return (event: string, listener: Listener) => this.add(event, listener, true, key === 'onceWithReplay');
      case 'off':
      case 'removeListener':
        return (event: string, listener: Listener) => (this.remove(event, listener), this.proxy());
      case 'removeAllListeners':
        return (event?: string) => (this.removeAll(event), this.proxy());
      case 'listenerCount':
        return (event: string) => (this.sealedListeners.get(event)?.size ?? 0) + (this.forwarded.get(event)?.size ?? 0);
      default:
        return FORWARD;
    }
  }

  private add(event: string, listener: Listener, once: boolean, replay: boolean): object {
    if (typeof listener !== 'function') throw new TypeError(`a "${event}" listener must be a function`);
    if (this.sealed.has(event)) {
      const onceListener: Listener = Object.assign((...args: unknown[]) => (this.remove(event, onceListener), listener(...args)), { of: listener });
      let set = this.sealedListeners.get(event);
      if (!set) this.sealedListeners.set(event, (set = new Set()));
      set.add(once ? onceListener : listener);
      return this.proxy();
    }
    const raw = this.raw();
    const onRaw: Listener = (...args) => {
      if (once) this.remove(event, listener);
      listener(...args.map(this.present));
    };
    let byListener = this.forwarded.get(event);
    if (!byListener) this.forwarded.set(event, (byListener = new Map()));
    this.remove(event, listener);
    byListener.set(listener, onRaw);
    if (replay && raw.onWithReplay) raw.onWithReplay(event, onRaw);
    else raw.on(event, onRaw);
    return this.proxy();
  }

  private remove(event: string, listener: Listener): void {
    const set = this.sealedListeners.get(event);
    if (set && !set.delete(listener)) {
      for (const l of set) if ((l as Listener & { of?: Listener }).of === listener) set.delete(l);
    }
    const onRaw = this.forwarded.get(event)?.get(listener);
    if (onRaw) {
      this.forwarded.get(event)!.delete(listener);
      this.raw().removeListener(event, onRaw);
    }
  }

  private removeAll(event?: string): void {
    for (const e of event === undefined ? [...this.sealedListeners.keys(), ...this.forwarded.keys()] : [event]) {
      this.sealedListeners.delete(e);
      for (const [listener] of this.forwarded.get(e) ?? []) this.remove(e, listener);
    }
  }

  /** Emits a sealed event to the app's listeners; one that throws does not stop the others. */
  emit(event: string, ...args: unknown[]): void {
    for (const listener of [...(this.sealedListeners.get(event) ?? [])]) {
      try {
        listener(...args);
      } catch (err) {
        console.error(`twilio-e2ee: a "${event}" listener threw`, err);
      }
    }
  }
}
