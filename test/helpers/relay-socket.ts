/**
 * The local relay's WebSocket at the frame level (no client library in between), for the
 * authorization matrix and the hostile-frame tests: send any text or bytes, read the answers
 * (frames with an `id`) apart from the pushes (frames with an `event`).
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
      if ('event' in frame) return; // a push
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

  async close(): Promise<void> {
    if (this.closed) return;
    const closing = once(this.ws, 'close');
    this.ws.close();
    await closing;
  }
}
