/**
 * Twilio's Media Content Service (MCS), as a local HTTP server the real SDK uploads to and
 * downloads from. The SDK builds its MCS client itself (transport forced to its own), which posts
 * with XMLHttpRequest, in Node the `xmlhttprequest` package over node:http; the configuration's
 * links point it here instead of https://mcs.us1.twilio.com.
 *
 * Answered as @twilio/mcs-client 1.0.1 (builds/lib.js) asks, in Twilio's shapes:
 * - POST <Media>?Category=&Filename=, the raw bytes, `Content-Type` and `X-Twilio-Token`: 201, the
 *   media record (snake_case, `links.content`, `links.content_direct_temporary`);
 * - GET <Media>/<sid>: the record, with a fresh temporary URL;
 * - POST <MediaSet>, JSON `{command: 'get', list: [{media_sid}]}`: `[{code, media_record}]`;
 * - GET on a temporary URL, no headers: the bytes; the URL is signed and expires (Twilio: "in
 *   several minutes"; here TEMPORARY_URL_SECONDS).
 * A record is readable by its author, and once attached to a message, by that conversation's
 * participants.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export const SERVICE_SID = 'IS00000000000000000000000000000000';
export const TEMPORARY_URL_SECONDS = 300;

/** One stored media, as Twilio holds it. */
export interface StoredMedia {
  sid: string;
  author: string;
  contentType: string;
  filename: string | null;
  category: string;
  bytes: Buffer;
  dateCreated: string;
  /** The conversation it was attached to by a message; null until then. */
  conversationSid: string | null;
}

/** What the MCS asks of the Conversations service around it. */
export interface MediaServiceHost {
  /** The identity of an access token, or null. */
  identityOf(token: string): string | null;
  isParticipant(identity: string, conversationSid: string): boolean;
  /** Bytes per media (the configuration's media_attachment_size_limit_in_mb). */
  sizeLimit: number;
}

type Answer = { status: number; body: unknown };
const json = (status: number, body: unknown): Answer => ({ status, body });
/** Twilio's REST error shape. */
const error = (status: number, message: string): Answer => json(status, { status, message, code: status * 100 });

export class MediaContentService {
  private readonly media = new Map<string, StoredMedia>();
  private readonly urlKey = randomBytes(32);
  private sids = 0;

  private constructor(
    private readonly server: Server,
    private readonly host: MediaServiceHost,
    readonly origin: string,
  ) {}

  static async listen(host: MediaServiceHost): Promise<MediaContentService> {
    let service: MediaContentService | undefined;
    const server = createServer((req, res) => void service!.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    service = new MediaContentService(server, host, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    return service;
  }

  get mediaUrl(): string {
    return `${this.origin}/v1/Services/${SERVICE_SID}/Media`;
  }

  get mediaSetUrl(): string {
    return `${this.origin}/v1/Services/${SERVICE_SID}/MediaSet`;
  }

  /** Everything stored, in upload order. */
  stored(): readonly StoredMedia[] {
    return [...this.media.values()];
  }

  /**
   * Attaches uploads to a message `author` sends in `conversationSid`: each must be theirs and
   * not yet attached. Returns the message's `medias` as the service stores them, or a refusal.
   */
  attach(sids: readonly unknown[], author: string, conversationSid: string): Array<Record<string, unknown>> | string {
    const found = sids.map((sid) => (typeof sid === 'string' ? this.media.get(sid) : undefined));
    const bad = found.findIndex((m) => !m || m.author !== author || m.conversationSid !== null);
    if (bad >= 0 || new Set(sids).size !== sids.length) return `media ${String(sids[bad])} cannot be attached`;
    return found.map((m) => {
      m!.conversationSid = conversationSid;
      return { sid: m!.sid, category: m!.category, filename: m!.filename, contentType: m!.contentType, size: m!.bytes.length };
    });
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.origin);
    if (url.pathname.startsWith('/content/')) return this.content(url, res);
    const answer = await this.answer(req, url).catch((): Answer => error(400, 'Bad Request'));
    res.writeHead(answer.status, { 'content-type': 'application/json' }).end(JSON.stringify(answer.body));
  }

  private async answer(req: IncomingMessage, url: URL): Promise<Answer> {
    const who = this.host.identityOf(String(req.headers['x-twilio-token'] ?? ''));
    if (!who) return error(401, 'Unauthorized');
    const base = `/v1/Services/${SERVICE_SID}/`;
    const [resource, sid, more] = url.pathname.startsWith(base) ? url.pathname.slice(base.length).split('/') : [];
    if (req.method === 'POST' && resource === 'Media' && sid === undefined) return this.upload(req, url, who);
    if (req.method === 'GET' && resource === 'Media' && sid && more === undefined) {
      const media = this.readable(sid, who);
      return media ? json(200, this.record(media)) : error(404, 'Not Found');
    }
    if (req.method === 'POST' && resource === 'MediaSet' && sid === undefined) {
      const query = JSON.parse((await body(req, 64 * 1024))?.toString('utf8') ?? '') as { command?: string; list?: Array<{ media_sid?: string }> };
      if (query.command !== 'get' || !Array.isArray(query.list)) return error(400, 'Bad Request');
      return json(200, query.list.map(({ media_sid }) => {
        const media = this.readable(String(media_sid), who);
        return media ? { code: 200, media_record: this.record(media) } : { code: 404, media_record: { sid: media_sid } };
      }));
    }
    return error(404, 'Not Found');
  }

  private async upload(req: IncomingMessage, url: URL, author: string): Promise<Answer> {
    const bytes = await body(req, this.host.sizeLimit);
    if (!bytes) return error(413, 'Payload Too Large');
    const sid = `ME${(++this.sids).toString(16).padStart(32, '0')}`;
    const media: StoredMedia = {
      sid,
      author,
      contentType: String(req.headers['content-type'] ?? 'application/octet-stream'),
      filename: url.searchParams.get('Filename'),
      category: url.searchParams.get('Category') ?? 'media',
      bytes,
      dateCreated: new Date().toISOString(),
      conversationSid: null,
    };
    this.media.set(sid, media);
    return json(201, this.record(media));
  }

  private readable(sid: string, who: string): StoredMedia | undefined {
    const media = this.media.get(sid);
    if (!media) return undefined;
    const allowed = media.author === who || (media.conversationSid !== null && this.host.isParticipant(who, media.conversationSid));
    return allowed ? media : undefined;
  }

  private record(media: StoredMedia): Record<string, unknown> {
    const url = `/v1/Services/${SERVICE_SID}/Media/${media.sid}`;
    return {
      sid: media.sid,
      service_sid: SERVICE_SID,
      channel_sid: media.conversationSid,
      message_sid: null,
      date_created: media.dateCreated,
      date_upload_updated: media.dateCreated,
      date_updated: media.dateCreated,
      size: media.bytes.length,
      content_type: media.contentType,
      filename: media.filename,
      author: media.author,
      category: media.category,
      url,
      is_multipart_upstream: false,
      links: { content: `${url}/Content`, content_direct_temporary: this.temporaryUrl(media.sid) },
    };
  }

  private signature(sid: string, expires: string): Buffer {
    return createHmac('sha256', this.urlKey).update(`${sid}\n${expires}`).digest();
  }

  private temporaryUrl(sid: string): string {
    const expires = String(Math.floor(Date.now() / 1000) + TEMPORARY_URL_SECONDS);
    return `${this.origin}/content/${sid}?Expires=${expires}&Signature=${this.signature(sid, expires).toString('base64url')}`;
  }

  /** A temporary URL: the bytes while its signature holds and it has not expired; 403 otherwise. */
  private content(url: URL, res: ServerResponse): void {
    const sid = url.pathname.slice('/content/'.length);
    const expires = url.searchParams.get('Expires') ?? '';
    const given = Buffer.from(url.searchParams.get('Signature') ?? '', 'base64url');
    const expected = this.signature(sid, expires);
    const media = this.media.get(sid);
    const valid = media && given.length === expected.length && timingSafeEqual(given, expected) && Number(expires) * 1000 > Date.now();
    if (!valid) {
      res.writeHead(403, { 'content-type': 'text/plain' }).end('Forbidden');
      return;
    }
    res.writeHead(200, { 'content-type': media.contentType, 'content-length': media.bytes.length }).end(media.bytes);
  }
}

/** A request's body; null past `limit` bytes. */
async function body(req: IncomingMessage, limit: number): Promise<Buffer | null> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const part of req as AsyncIterable<Buffer>) {
    size += part.length;
    if (size > limit) return null;
    parts.push(part);
  }
  return Buffer.concat(parts);
}
