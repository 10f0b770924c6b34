/**
 * The local relay's WebSocket at the frame level (no client library in between), for the
 * authorization matrix, the hostile-frame and the relay limit tests: send any text or bytes, read
 * the answers (frames with an `id`) apart from the pushes (frames with an `event`), stop reading.
 */
import { once } from 'node:events';
import WebSocket from 'ws';

export interface RelayAnswer {
  id: number | null;
  ok: boolean;
  result?: unknown;
  error?: { code: string; message: string };
}

export class RelaySocket {
  private readonly answers: RelayAnswer[] = [];
  /** Pushes received so far, in order. */
  readonly pushes: Array<{ event: string; data: unknown }> = [];
  private waiting: (() => void) | null = null;
  private nextId = 1;
  closed = false;
  closeCode: number | null = null;

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data) => {
      let frame: Record<string, unknown>;
      try {
        frame = JSON.parse(String(data)) as Record<string, unknown>;
      } catch {
        frame = { id: null, ok: false, error: { code: 'CLIENT_UNPARSABLE', message: String(data).slice(0, 200) } };
      }
      if ('event' in frame) {
        this.pushes.push(frame as { event: string; data: unknown });
        return;
      }
      this.answers.push(frame as unknown as RelayAnswer);
      this.waiting?.();
    });
    ws.on('close', (code) => {
      this.closed = true;
      this.closeCode = code;
      this.waiting?.();
    });
    ws.on('error', () => {});
  }

  static async open(url: string): Promise<RelaySocket> {
    const ws = new WebSocket(url);
    await once(ws, 'open');
    return new RelaySocket(ws);
  }

  /** Sends raw text or bytes; resolves with the next answer, or null when the socket closed first. */
  async sendRaw(data: string | Buffer, timeoutMs = 5_000): Promise<RelayAnswer | null> {
    if (this.closed) return null;
    this.ws.send(data);
    const deadline = Date.now() + timeoutMs;
    while (this.answers.length === 0 && !this.closed) {
      if (Date.now() > deadline) throw new Error(`no relay answer within ${timeoutMs} ms to ${String(data).slice(0, 120)}`);
      await new Promise<void>((resolve) => {
        this.waiting = resolve;
        setTimeout(resolve, 50);
      });
      this.waiting = null;
    }
    return this.answers.shift() ?? null;
  }

  /** Sends `{id, op, params}` with the next id; resolves with its answer. */
  async request(op: string, params: unknown = {}): Promise<RelayAnswer> {
    const answer = await this.sendRaw(JSON.stringify({ id: this.nextId++, op, params }));
    if (!answer) throw new Error(`the relay closed the socket (code ${this.closeCode}) instead of answering ${op}`);
    return answer;
  }

  /** Sends without waiting for an answer (answers queue up; `request` reads them in order). */
  sendOnly(data: string | Buffer): void {
    this.ws.send(data);
  }

  /** Bytes this client has sent that the server has not taken yet. */
  get bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }

  /** Stops reading the socket (like a client that never reads), then reads on again. */
  pause(): void {
    this.ws.pause();
  }

  resume(): void {
    this.ws.resume();
  }

  /** Resolves with the close code once the socket closed (rejects after `timeoutMs`). */
  async closedWith(timeoutMs = 10_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error(`the relay socket is still open after ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return this.closeCode!;
  }

  /** How many answers were received and not yet read. */
  get unreadAnswers(): number {
    return this.answers.length;
  }

  /** Answers received and not yet read. */
  takeAnswers(): RelayAnswer[] {
    return this.answers.splice(0);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    const closing = once(this.ws, 'close');
    this.ws.resume(); // the server's close frame must be read
    this.ws.close();
    await closing;
  }
}
