/**
 * The Sync objects behind Twilio Conversations, in memory (documents, maps, lists), and a client's
 * handles on them, as the SDK 3.0.1 reads them (test/support/conversations-cloud.ts).
 */
import { EventEmitter } from 'node:events';

export type Data = Record<string, unknown>;
export const copy = <T>(value: T): T => structuredClone(value);

/** One Sync object (document, map or list) and the open handles of the clients subscribed to it. */
export class SyncObject {
  readonly handles = new Set<EventEmitter>();
  /** Delivered on the next turn of the event loop, in order, to every handle open then. */
  emit(event: string, payload: unknown): void {
    const snapshot = copy(payload);
    for (const handle of this.handles) setImmediate(() => handle.emit(event, copy(snapshot)));
  }
}

export class SyncDocument extends SyncObject {
  constructor(public data: Data) {
    super();
  }
  update(change: Data): void {
    Object.assign(this.data, change);
    this.emit('updated', { data: this.data, isLocal: false });
  }
}

export class SyncMap extends SyncObject {
  readonly items = new Map<string, Data>();
  set(key: string, data: Data): void {
    const event = this.items.has(key) ? 'itemUpdated' : 'itemAdded';
    this.items.set(key, data);
    this.emit(event, { item: { key, data }, isLocal: false });
  }
}

interface ListItem {
  index: number;
  data: Data;
}

export class SyncList extends SyncObject {
  readonly items: ListItem[] = [];
  private nextIndex = 0;
  push(data: Data): number {
    const item = { index: this.nextIndex++, data };
    this.items.push(item);
    this.emit('itemAdded', { item, isLocal: false });
    return item.index;
  }
  update(index: number, change: Data): void {
    const item = this.items.find((i) => i.index === index)!;
    Object.assign(item.data, change);
    this.emit('itemUpdated', { item, isLocal: false });
  }
  remove(index: number): void {
    this.items.splice(this.items.findIndex((i) => i.index === index), 1);
    this.emit('itemRemoved', { index, isLocal: false });
  }
}

/** A Sync paginator over a snapshot, in the order asked. */
function page<T>(items: readonly T[], offset: number, size: number) {
  const at = (o: number) => Promise.resolve(page(items, Math.max(0, o), size));
  return {
    items: items.slice(offset, offset + size).map(copy),
    hasNextPage: offset + size < items.length,
    hasPrevPage: offset > 0,
    nextPage: () => at(offset + size),
    prevPage: () => at(offset - size),
  };
}

/** A client's handle on a Sync object: an emitter of the object's events, with its reads. */
export function handleOf(object: SyncObject, opened: Set<{ object: SyncObject; handle: EventEmitter }>): EventEmitter & Data {
  const handle = new EventEmitter() as EventEmitter & Data;
  object.handles.add(handle);
  opened.add({ object, handle });
  handle.close = () => object.handles.delete(handle);
  if (object instanceof SyncDocument) {
    Object.defineProperty(handle, 'data', { get: () => copy(object.data) });
  }
  if (object instanceof SyncMap) {
    handle.get = async (key: string) => {
      const data = object.items.get(key);
      if (!data) throw Object.assign(new Error(`no item ${key}`), { name: 'SyncError', status: 404 });
      return { key, data: copy(data) };
    };
    handle.getItems = async (args: { key?: string } = {}) => {
      const items = [...object.items].filter(([key]) => args.key === undefined || key === args.key).map(([key, data]) => ({ key, data }));
      return page(items, 0, 100);
    };
  }
  if (object instanceof SyncList) {
    handle.getItems = async ({ from, pageSize = 50, order = 'asc' }: { from?: number; pageSize?: number; order?: 'asc' | 'desc' } = {}) => {
      const ordered = order === 'asc' ? object.items : [...object.items].reverse();
      const start = from === undefined ? 0 : ordered.findIndex((i) => (order === 'asc' ? i.index >= from : i.index <= from));
      return page(ordered, start < 0 ? ordered.length : start, pageSize);
    };
  }
  return handle;
}
