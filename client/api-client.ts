/** The card service's HTTP API, from the client side (DESIGN.md section 6). */
import {
  ApiPath,
  type AppKeyResponse,
  type CardsLookupResponse,
  type HistoryPostRequest,
  type HistoryResponse,
  type RegisterCardRequest,
  type TwilioTokenResponse,
} from '../shared/api.js';
import type { CardWire } from '../shared/card.js';
import { E2EEError, ErrorCode } from '../shared/errors.js';

export type AuthTokenSource = () => Promise<string> | string;
export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export class ApiClient {
  private readonly baseUrl: string;

  constructor(
    serverUrl: string,
    private readonly getAuthToken: AuthTokenSource,
    private readonly fetchImpl: FetchLike = (input, init) => globalThis.fetch(input, init),
  ) {
    this.baseUrl = serverUrl.replace(/\/+$/, '');
  }

  /** The app JWT's `sub` (the Twilio identity). Decoded, not verified: the server verifies it. */
  async identity(): Promise<string> {
    const token = await this.getAuthToken();
    try {
      const payload = JSON.parse(atob(token.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/'))) as { sub?: unknown };
      if (typeof payload.sub === 'string' && payload.sub.length > 0) return payload.sub;
    } catch {
      // fall through
    }
    throw new E2EEError(ErrorCode.INVALID_ARGUMENT, 'getAuthToken() must return a JWT whose "sub" is the Twilio identity');
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { authorization: `Bearer ${await this.getAuthToken()}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let response: Response;
    try {
      response = await this.fetchImpl(this.baseUrl + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (err) {
      throw new E2EEError(ErrorCode.NETWORK_ERROR, `cannot reach the card service at ${this.baseUrl}: ${(err as Error).message}`, { cause: err });
    }
    const text = await response.text();
    let json: unknown = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      // non-JSON error bodies are reported by status below
    }
    if (!response.ok) {
      const error = (json as { error?: { code?: string; message?: string } } | null)?.error;
      throw new E2EEError(ErrorCode.SERVER_ERROR, `${method} ${path} failed with ${response.status}: ${error?.message ?? response.statusText}`, {
        details: { status: response.status, serverCode: error?.code ?? null },
      });
    }
    return json as T;
  }

  twilioToken(): Promise<TwilioTokenResponse> {
    return this.request('GET', ApiPath.twilioToken);
  }

  registerCard(request: RegisterCardRequest): Promise<CardWire> {
    return this.request('POST', ApiPath.cards, request);
  }

  lookupCards(identities: readonly string[]): Promise<CardsLookupResponse> {
    const query = identities.map((i) => `identity=${encodeURIComponent(i)}`).join('&');
    return this.request('GET', `${ApiPath.cards}?${query}`);
  }

  getCard(id: string): Promise<CardWire> {
    return this.request('GET', ApiPath.card(id));
  }

  revokeCard(id: string): Promise<CardWire> {
    return this.request('DELETE', ApiPath.card(id));
  }

  appKey(): Promise<AppKeyResponse> {
    return this.request('GET', ApiPath.appKey);
  }

  orgCard(): Promise<CardWire> {
    return this.request('GET', ApiPath.orgCard);
  }

  postHistory(body: HistoryPostRequest): Promise<unknown> {
    return this.request('POST', ApiPath.history, body);
  }

  history(conversationSid: string, cardId: string, after: number, limit: number): Promise<HistoryResponse> {
    const query = `cardId=${encodeURIComponent(cardId)}&after=${after}&limit=${limit}`;
    return this.request('GET', `${ApiPath.historyOf(conversationSid)}?${query}`);
  }
}
