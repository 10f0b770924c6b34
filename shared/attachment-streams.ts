/**
 * Web Streams as async iterables and back, for fetch bodies and File.stream(). Apart from the
 * attachment crypto so that the client loads that on demand (client bundle size).
 */

/** A ReadableStream as an async iterable (Safari's streams are not async-iterable). Cancels the stream if left early. */
export async function* readableToIterable(stream: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader();
  let done = false;
  try {
    for (;;) {
      const next = await reader.read();
      if (next.done) {
        done = true;
        return;
      }
      yield next.value;
    }
  } finally {
    if (!done) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}

/** An async iterable as a ReadableStream, pulled on demand; cancelling it stops the iterable. */
export function iterableToReadable(iterable: AsyncIterable<Uint8Array>): ReadableStream<Uint8Array> {
  const iterator = iterable[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = await iterator.next();
      if (next.done) controller.close();
      else controller.enqueue(next.value);
    },
    async cancel() {
      await iterator.return?.();
    },
  });
}
