/**
 * The witness's HTTP server: `POST <prefix>/add-checkpoint` (c2sp.org/tlog-witness) and nothing
 * else. node:http alone, so a witness runs where none of the service's packages are installed.
 * Bodies are bounded and read whole before the witness sees them; requests are never logged
 * with their bodies (checkpoints are public, but nothing else needs keeping).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { ErrorCode } from '../../shared/errors.js';
import { ADD_CHECKPOINT_PATH, MAX_ADD_CHECKPOINT_BYTES } from './protocol.js';
import type { Witness, WitnessAnswer, WitnessLogger } from './witness.js';

/** A slow client gets this long for its whole request, and this long for its headers, ms. */
const REQUEST_TIMEOUT_MS = 10_000;
const HEADERS_TIMEOUT_MS = 5_000;

export interface WitnessServerOptions {
  witness: Witness;
  /** The submission prefix: "" (the default) serves POST /add-checkpoint. */
  prefix?: string;
  log?: WitnessLogger;
}

function error(status: number, code: ErrorCode, message: string): WitnessAnswer {
  return { status, contentType: 'application/json; charset=utf-8', body: JSON.stringify({ error: { code, message } }) };
}

function send(res: ServerResponse, answer: WitnessAnswer, headers: Record<string, string> = {}): void {
  res.writeHead(answer.status, { 'content-type': answer.contentType, 'cache-control': 'no-store', ...headers });
  res.end(answer.body);
}

/** The body; null when it exceeds `limit` (the rest is not read), undefined when the client went away. */
function readBody(req: IncomingMessage, limit: number): Promise<Uint8Array | null | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let length = 0;
    req.on('data', (chunk: Buffer) => {
      length += chunk.length;
      if (length > limit) {
        req.pause();
        resolve(null);
      } else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('close', () => resolve(undefined)); // no effect after 'end' or the limit
    req.on('error', () => resolve(undefined));
  });
}

/** The witness's HTTP server (not listening yet). */
export function createWitnessServer(options: WitnessServerOptions): Server {
  const { witness, prefix = '' } = options;
  const log = options.log ?? (() => {});
  const path = `${prefix.replace(/\/+$/, '')}${ADD_CHECKPOINT_PATH}`;
  const server = createServer(async (req, res) => {
    try {
      if ((req.url ?? '').split('?')[0] !== path) return send(res, error(404, ErrorCode.NOT_FOUND, `this witness serves POST ${path} only`));
      if (req.method !== 'POST') return send(res, error(405, ErrorCode.BAD_REQUEST, `${path} takes POST`), { allow: 'POST' });
      const declared = Number(req.headers['content-length'] ?? 0);
      const body = declared > MAX_ADD_CHECKPOINT_BYTES ? null : await readBody(req, MAX_ADD_CHECKPOINT_BYTES);
      if (body === undefined) return;
      if (body === null) {
        // Close rather than read on: the rest of an oversized body is not worth receiving.
        return send(res, error(413, ErrorCode.PAYLOAD_TOO_LARGE, `a request body is at most ${MAX_ADD_CHECKPOINT_BYTES} bytes`), { connection: 'close' });
      }
      send(res, witness.addCheckpoint(body));
    } catch (err) {
      log('error', `add-checkpoint failed: ${(err as Error).message}`);
      if (!res.headersSent) send(res, error(500, ErrorCode.INTERNAL, 'the witness failed; see its log'));
      else res.destroy();
    }
  });
  server.requestTimeout = REQUEST_TIMEOUT_MS;
  server.headersTimeout = HEADERS_TIMEOUT_MS;
  // A malformed request line or header: answer 400 and close, as Node does, without logging its bytes.
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    else socket.destroy();
  });
  return server;
}
