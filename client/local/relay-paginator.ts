/** A page of a relay listing (messages, conversations) as the SDK pages it: `prevPage`/`nextPage` ask the relay. */
import type { BasePaginator } from '../conversations.js';

const noPage = (which: string) => () => Promise.reject(new Error(`no ${which} page`));

export class LocalPaginator<T> implements BasePaginator<T> {
  constructor(
    readonly items: T[],
    readonly hasPrevPage: boolean,
    readonly hasNextPage: boolean,
    private readonly fetchPrev: () => Promise<BasePaginator<T>> = noPage('previous'),
    private readonly fetchNext: () => Promise<BasePaginator<T>> = noPage('next'),
  ) {}
  prevPage(): Promise<BasePaginator<T>> {
    if (!this.hasPrevPage) return Promise.reject(new Error('no previous page'));
    return this.fetchPrev();
  }
  nextPage(): Promise<BasePaginator<T>> {
    if (!this.hasNextPage) return Promise.reject(new Error('no next page'));
    return this.fetchNext();
  }
}
