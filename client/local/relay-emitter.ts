/**
 * The event members of the SDK's objects (its ReplayEventEmitter) on the local relay's objects:
 * `addListener`, and the `WithReplay` forms, which also hand a new listener the last arguments
 * its event was emitted with, if it ever was.
 */
import { Emitter } from '../emitter.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Listener = (...args: any[]) => void;

export class LocalEmitter<Events extends { [K in keyof Events]: Listener }> extends Emitter<Events> {
  /** The last arguments of each event: one entry per event name, as the SDK keeps them. */
  private readonly lastArgs = new Map<keyof Events, Parameters<Events[keyof Events]>>();

  addListener<K extends keyof Events>(event: K, listener: Events[K]): this {
    return this.on(event, listener);
  }

  onWithReplay<K extends keyof Events>(event: K, listener: Events[K]): this {
    this.on(event, listener);
    const last = this.lastArgs.get(event);
    if (last) listener(...last);
    return this;
  }

  addListenerWithReplay<K extends keyof Events>(event: K, listener: Events[K]): this {
    return this.onWithReplay(event, listener);
  }

  /** Called once: at once with the last arguments if the event was emitted, else at its next emission. */
  onceWithReplay<K extends keyof Events>(event: K, listener: Events[K]): this {
    const last = this.lastArgs.get(event);
    if (!last) return this.once(event, listener);
    listener(...last);
    return this;
  }

  protected override emit<K extends keyof Events>(event: K, ...args: Parameters<Events[K]>): boolean {
    this.lastArgs.set(event, args);
    return super.emit(event, ...args);
  }
}
