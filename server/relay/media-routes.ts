/**
 * The local relay's media over HTTP (local mode only), below the relay's path:
 * - POST /v1/relay/media?conversationSid=&filename= with `Authorization: Bearer <relay token>`,
 *   the blob as the body and its type as Content-Type: streamed to the store, counted as it
 *   arrives (ATTACHMENT_TOO_LARGE at RELAY_LIMITS.mediaBytes, or at once for a larger declared
 *   Content-Length), answered 201 with the media once durable.
 * - GET /v1/relay/media/:sid?expires=&signature=: the blob, streamed, for a URL from getMediaUrls.
 * The body must arrive within REQUEST_TIMEOUT, like every request.
 */
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiPath } from '../../shared/api.js';
import { E2EEError, ErrorCode } from '../../shared/errors.js';
import { MAX_ATTACHMENT_CONTENT_TYPE_CHARS, MAX_ATTACHMENT_FILENAME_CHARS } from '../../shared/limits.js';
import { RELAY_LIMITS } from '../../shared/relay-protocol.js';
import { verifyRelayToken } from '../relay-token.js';
import { newSid, str } from './data.js';
import { toMediaData, type RelayMediaService } from './media.js';

/** The upload's bytes, counted: ATTACHMENT_TOO_LARGE past the limit, BAD_REQUEST short of a declared length. */
export async function* countedUpload(body: AsyncIterable<Buffer>, declared: number | null): AsyncIterable<Uint8Array> {
  let total = 0;
  for await (const chunk of body) {
    total += chunk.length;
    if (total > RELAY_LIMITS.mediaBytes) throw tooLarge();
    yield chunk;
  }
  if (declared !== null && total !== declared) throw new E2EEError(ErrorCode.BAD_REQUEST, `the body ended after ${total} of ${declared} bytes`);
}

const tooLarge = () => new E2EEError(ErrorCode.ATTACHMENT_TOO_LARGE, `a media blob has at most ${RELAY_LIMITS.mediaBytes} bytes`);

function declaredLength(request: FastifyRequest): number | null {
  const header = request.headers['content-length'];
  if (header === undefined) return null;
  if (!/^\d{1,16}$/.test(header)) throw new E2EEError(ErrorCode.BAD_REQUEST, 'Content-Length is not a number');
  return Number(header);
}

export interface MediaRoutesOptions {
  media: RelayMediaService;
  tokenSecret: Uint8Array;
  /** The relay's request budget (ms to wait, 0 when allowed), shared with its socket frames. */
  rateLimit(identity: string): number;
}

export default async function relayMediaRoutes(app: FastifyInstance, { media, tokenSecret, rateLimit }: MediaRoutesOptions): Promise<void> {
  const { store } = app.e2ee;
  // The upload handler reads the raw body as a stream: no parser buffers it, whatever its type.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, _payload, done) => done(null));

  app.post(ApiPath.relayMedia, { schema: { hide: true } }, async (request, reply) => {
    const token = /^Bearer (\S+)$/.exec(request.headers.authorization ?? '')?.[1];
    if (!token) throw new E2EEError(ErrorCode.UNAUTHORIZED, 'send the relay token as "Authorization: Bearer <token>"');
    let identity: string;
    try {
      identity = verifyRelayToken(tokenSecret, token).identity;
    } catch (err) {
      throw err instanceof E2EEError && err.code === ErrorCode.TOKEN_EXPIRED ? err : new E2EEError(ErrorCode.UNAUTHORIZED, 'the relay token is invalid or expired');
    }
    const waitMs = rateLimit(identity);
    if (waitMs > 0) throw new E2EEError(ErrorCode.RATE_LIMITED, `too many relay requests; retry in ${Math.ceil(waitMs / 1000)} s`);
    const query = request.query as Record<string, unknown>;
    const conversationSid = str(query.conversationSid, 'conversationSid', 256);
    const filename = query.filename === undefined ? null : str(query.filename, 'filename', MAX_ATTACHMENT_FILENAME_CHARS);
    const contentType = str(request.headers['content-type'], 'Content-Type', MAX_ATTACHMENT_CONTENT_TYPE_CHARS);
    const declared = declaredLength(request);
    // Past the limit, nothing is read: the connection closes after the answer.
    reply.header('connection', 'close');
    if (declared !== null && declared > RELAY_LIMITS.mediaBytes) throw tooLarge();
    const release = await media.beginUpload(identity, conversationSid, declared ?? 0);
    try {
      const sid = newSid('ME');
      const stored = await store.putMedia(
        { sid, conversationSid, uploader: identity, filename, contentType, dateCreatedMs: Date.now() },
        countedUpload(request.raw, declared),
      );
      reply.removeHeader('connection');
      return reply.code(201).send(toMediaData(stored));
    } finally {
      release();
    }
  });

  app.get(`${ApiPath.relayMedia}/:sid`, { schema: { hide: true } }, async (request, reply) => {
    const { sid } = request.params as { sid: string };
    const { expires, signature } = request.query as Record<string, unknown>;
    const found = await media.download(sid, expires, signature);
    const content = await store.readMedia(found.sid);
    if (!content) throw new E2EEError(ErrorCode.NOT_FOUND, 'the media is gone (its message was removed)');
    // Never the uploader's type: a blob served as text/html from this origin would be a page of it.
    return reply
      .header('content-type', 'application/octet-stream')
      .header('content-length', found.size)
      .header('content-disposition', 'attachment')
      .header('x-content-type-options', 'nosniff')
      .header('cache-control', 'private, no-store')
      .send(content instanceof Readable ? content : Readable.from(content));
  });
}
