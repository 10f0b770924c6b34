/**
 * HTTP errors: every 4xx/5xx the service answers is `{"error": {"code", "message"}}` with a
 * stable code and the status the catalogue (shared/errors.ts) gives it. Route code throws an
 * E2EEError; `errorHandler` maps everything else (Fastify's own errors, @fastify/jwt) and hides
 * the internals of the unexpected.
 */
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ApiErrorBody } from '../shared/api.js';
import { ErrorCode, errorStatus, isE2EEError } from '../shared/errors.js';

/** What the client gets: a status and the body's code and message. */
export interface HttpAnswer {
  status: number;
  code: ErrorCode;
  message: string;
}

export function errorBody(code: ErrorCode, message: string): ApiErrorBody {
  return { error: { code, message } };
}

function answer(code: ErrorCode, message: string, status = errorStatus(code)): HttpAnswer {
  return { status, code, message };
}

/**
 * Fastify's error codes that map to a specific API code, and where given, the message to send
 * instead of Fastify's own (the URL errors quote the raw path, which may carry a secret).
 */
const FASTIFY_CODES: Record<string, [number, ErrorCode, string?]> = {
  FST_ERR_CTP_BODY_TOO_LARGE: [413, ErrorCode.PAYLOAD_TOO_LARGE],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, ErrorCode.UNSUPPORTED_MEDIA_TYPE],
  FST_ERR_CTP_INVALID_JSON_BODY: [400, ErrorCode.BAD_REQUEST],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, ErrorCode.BAD_REQUEST],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, ErrorCode.BAD_REQUEST],
  FST_ERR_VALIDATION: [400, ErrorCode.BAD_REQUEST],
  // Raised by the router before any route runs (see `frameworkErrors` in server/app.ts).
  FST_ERR_BAD_URL: [400, ErrorCode.BAD_REQUEST, 'the URL path is not valid (malformed percent-encoding)'],
  FST_ERR_MAX_PARAM_LENGTH: [414, ErrorCode.BAD_REQUEST, 'a path parameter is too long'],
};

/** A generic code for other client errors Fastify raises (bad URLs, proto poisoning, ...). */
function codeForStatus(status: number): ErrorCode {
  if (status === 401) return ErrorCode.UNAUTHORIZED;
  if (status === 403) return ErrorCode.FORBIDDEN;
  if (status === 404) return ErrorCode.NOT_FOUND;
  if (status === 413) return ErrorCode.PAYLOAD_TOO_LARGE;
  if (status === 415) return ErrorCode.UNSUPPORTED_MEDIA_TYPE;
  if (status === 429) return ErrorCode.RATE_LIMITED;
  return ErrorCode.BAD_REQUEST;
}

/** Maps any thrown value to the status, code and message the client sees. */
export function toHttpAnswer(err: unknown): HttpAnswer {
  // Ours, and the core's (CARD_*, ENCODING_INVALID, ...): the catalogue gives the status.
  if (isE2EEError(err)) return answer(err.code, err.message);
  const e = err as Partial<FastifyError> | null;
  const code = typeof e?.code === 'string' ? e.code : '';
  const mapped = FASTIFY_CODES[code];
  if (mapped) return answer(mapped[1], mapped[2] ?? e?.message ?? 'bad request', mapped[0]);
  // @fastify/jwt (FST_JWT_*) and fast-jwt (FAST_JWT_*): missing, malformed, expired, wrongly signed.
  if (code.startsWith('FST_JWT_') || code.startsWith('FAST_JWT_')) {
    return answer(ErrorCode.UNAUTHORIZED, e?.message ?? 'invalid bearer token');
  }
  const status = typeof e?.statusCode === 'number' ? e.statusCode : 500;
  if (status >= 400 && status < 500) return answer(codeForStatus(status), e?.message ?? 'bad request', status);
  return answer(ErrorCode.INTERNAL, 'internal error');
}

/** The error handler of every twilio-e2ee route. */
export function errorHandler(err: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const mapped = toHttpAnswer(err);
  if (mapped.status >= 500) {
    // Only here does the original error (and its stack) go anywhere: the log, never the client.
    request.log.error({ err }, 'request failed');
  } else {
    request.log.info({ statusCode: mapped.status, code: mapped.code }, 'request rejected');
  }
  return reply.code(mapped.status).send(errorBody(mapped.code, mapped.message));
}

/** 404 for unknown routes, in the same shape. The query string is left out: it may hold secrets. */
export function notFoundHandler(request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const path = request.url.split('?')[0] ?? '';
  return reply.code(errorStatus(ErrorCode.NOT_FOUND)).send(errorBody(ErrorCode.NOT_FOUND, `no route ${request.method} ${path}`));
}

/**
 * Fastify's `clientErrorHandler` (server/app.ts): answers what Node's HTTP parser refuses before
 * any request exists (malformed request line or headers, headers over the size limit, a request
 * that took too long) in the error shape. It logs the code only: Fastify's default handler logs
 * the error at trace level, and Node puts the raw bytes received on it (`rawPacket`), which may
 * hold an Authorization header.
 */
export function clientErrorHandler(this: FastifyInstance, err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, message] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'the request was not received in time']
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'the request headers are too large']
        : [400, 'the request is not valid HTTP'];
  this.log.debug({ code: err.code, statusCode: status }, 'client error');
  if (socket.writable) {
    const body = JSON.stringify(errorBody(ErrorCode.BAD_REQUEST, message));
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `Content-Type: application/json; charset=utf-8\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}
