/** The card service's HTTP API, from the client side (docs/API.md). */
import {
  ApiPath,
  type AppKeyResponse,
  type CardsLookupResponse,
  type DeviceRequestStatus,
  type DeviceRequestsResponse,
  type PendingDevice,
  type HistoryDeleteResponse,
  type HistoryPostRequest,
  type HistoryResponse,
  type LogConsistencyResponse,
  type LogEventsResponse,
  type LogInclusionResponse,
  type LogKeyResponse,
  type TwilioTokenResponse,
} from '../shared/api.js';
import type { CardRequest, CardWire } from '../shared/card.js';
import { DEVICE_PROOF_HEADER, signDeviceProof } from '../shared/device-proof.js';
import { utf8 } from '../shared/encoding.js';
import { E2EEError, ErrorCode, isE2EEError } from '../shared/errors.js';

export type AuthTokenSource = () => Promise<string> | string;
export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

/** A registered device that signs X-E2EE-Device proofs: its card id and its sign key, behind `sign`. */
export interface DeviceProver {
  cardId: string;
  sign(message: Uint8Array): Promise<Uint8Array>;
}

/** POST /v1/cards: the registered card (201), or a request waiting for an existing device's approval (202). */
export type Registration = { card: CardWire } | { pending: PendingDevice };

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

  async request<T>(method: string, path: string, body?: unknown, device?: DeviceProver): Promise<T> {
    return (await this.exchange<T>(method, path, body, device)).json;
  }

  /** One request, with `device`'s proof over exactly the bytes sent; the status, JSON and text of a 2xx answer. */
  private async exchange<T>(method: string, path: string, body?: unknown, device?: DeviceProver): Promise<{ status: number; json: T; text: string }> {
    const headers: Record<string, string> = { authorization: `Bearer ${await this.getAuthToken()}` };
    const sent = body === undefined ? undefined : JSON.stringify(body);
    if (sent !== undefined) headers['content-type'] = 'application/json';
    if (device) {
      const signed = { method, path, ...(sent === undefined ? {} : { body: utf8(sent) }) };
      headers[DEVICE_PROOF_HEADER] = await signDeviceProof((message) => device.sign(message), device.cardId, signed);
    }
    let response: Response;
    try {
      response = await this.fetchImpl(this.baseUrl + path, { method, headers, body: sent });
    } catch (err) {
      throw new E2EEError(ErrorCode.NETWORK_ERROR, `cannot reach the card service at ${this.baseUrl}: ${(err as Error).message}`, { cause: err });
    }
    let text: string;
    try {
      text = await response.text();
    } catch (err) {
      // The connection broke while the answer was being read: as unreachable as a refused connection.
      throw new E2EEError(ErrorCode.NETWORK_ERROR, `the answer of the card service at ${this.baseUrl} was cut off: ${(err as Error).message}`, { cause: err });
    }
    let json: unknown = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      // non-JSON error bodies are reported by status below (and the checkpoint is text)
    }
    if (!response.ok) throw answerError(method, path, response, json);
    return { status: response.status, json: json as T, text };
  }

  twilioToken(): Promise<TwilioTokenResponse> {
    return this.request('GET', ApiPath.twilioToken);
  }

  /** With `approver` (an active device of the identity), the card is registered at once under any policy. */
  async registerCard(request: CardRequest, approver?: DeviceProver): Promise<Registration> {
    const { status, json } = await this.exchange<CardWire | PendingDevice>('POST', ApiPath.cards, request, approver);
    return status === 202 ? { pending: json as PendingDevice } : { card: json as CardWire };
  }

  lookupCards(identities: readonly string[]): Promise<CardsLookupResponse> {
    const query = identities.map((i) => `identity=${encodeURIComponent(i)}`).join('&');
    return this.request('GET', `${ApiPath.cards}?${query}`);
  }

  getCard(id: string): Promise<CardWire> {
    return this.request('GET', ApiPath.card(id));
  }

  revokeCard(id: string, by: DeviceProver): Promise<CardWire> {
    return this.request('DELETE', ApiPath.card(id), undefined, by);
  }

  deviceRequests(by: DeviceProver): Promise<DeviceRequestsResponse> {
    return this.request('GET', ApiPath.deviceRequests, undefined, by);
  }

  deviceRequestStatus(cardId: string): Promise<DeviceRequestStatus> {
    return this.request('GET', ApiPath.deviceRequest(cardId));
  }

  approveDevice(cardId: string, by: DeviceProver): Promise<CardWire> {
    return this.request('POST', ApiPath.approveDevice(cardId), undefined, by);
  }

  rejectDevice(cardId: string, by: DeviceProver): Promise<DeviceRequestStatus> {
    return this.request('POST', ApiPath.rejectDevice(cardId), undefined, by);
  }

  appKey(): Promise<AppKeyResponse> {
    return this.request('GET', ApiPath.appKey);
  }

  orgCard(): Promise<CardWire> {
    return this.request('GET', ApiPath.orgCard);
  }

  /** The latest checkpoint note of the card transparency log (text, verified by LogView). */
  async logCheckpoint(): Promise<string> {
    return (await this.exchange('GET', ApiPath.logCheckpoint)).text;
  }

  logKey(): Promise<LogKeyResponse> {
    return this.request('GET', ApiPath.logKey);
  }

  logConsistency(from: number, to: number): Promise<LogConsistencyResponse> {
    return this.request('GET', `${ApiPath.logConsistency}?from=${from}&to=${to}`);
  }

  /** The inclusion proof of a card's registration event (by card id) or of a leaf (by index) in the tree of `size`. */
  logInclusion(of: { cardId: string } | { index: number }, size: number): Promise<LogInclusionResponse> {
    const key = 'cardId' in of ? `cardId=${encodeURIComponent(of.cardId)}` : `index=${of.index}`;
    return this.request('GET', `${ApiPath.logInclusion}?${key}&size=${size}`);
  }

  /** An identity's events from `since` (its chain's seq) with their inclusion proofs in the tree of `size`. */
  logEvents(identity: string, since: number, size: number): Promise<LogEventsResponse> {
    return this.request('GET', `${ApiPath.logEvents}?identity=${encodeURIComponent(identity)}&since=${since}&size=${size}`);
  }

  postHistory(body: HistoryPostRequest): Promise<unknown> {
    return this.request('POST', ApiPath.history, body);
  }

  history(conversationSid: string, cardId: string, after: number, limit: number): Promise<HistoryResponse> {
    const query = `cardId=${encodeURIComponent(cardId)}&after=${after}&limit=${limit}`;
    return this.request('GET', `${ApiPath.historyOf(conversationSid)}?${query}`);
  }

  /** Deletes the history copy of a message the conversation no longer holds (after `message.remove()`). */
  deleteHistory(conversationSid: string, messageSid: string): Promise<HistoryDeleteResponse> {
    return this.request('DELETE', ApiPath.historyMessage(conversationSid, messageSid));
  }
}

/**
 * The error of a failed answer. One in the error shape keeps the service's code unchanged
 * (`err.code === ErrorCode.KEY_IN_USE`; a code newer than this client's catalogue too);
 * anything else (a proxy's error page) is SERVER_ERROR. Either way `details.status` is the status.
 */
function answerError(method: string, path: string, response: Response, json: unknown): E2EEError {
  const error = (json as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  const details = { status: response.status };
  if (typeof error?.code === 'string' && typeof error.message === 'string') {
    return new E2EEError(error.code as ErrorCode, `${method} ${path} failed with ${response.status}: ${error.message}`, { details });
  }
  return new E2EEError(ErrorCode.SERVER_ERROR, `${method} ${path} failed with ${response.status}: ${response.statusText}`, { details });
}

/** The HTTP status when `err` is the card service's answer, else null (network trouble, a client-side error). */
export function answerStatus(err: unknown): number | null {
  return isE2EEError(err) && typeof err.details?.status === 'number' ? err.details.status : null;
}

/**
 * Polls a new device's pending request until an existing device approves it (its card) or
 * rejects it, or it expires (DEVICE_NOT_APPROVED). Network errors, 429 and 5xx only delay the next poll.
 */
export async function awaitApproval(api: ApiClient, pending: PendingDevice, pollMs: number): Promise<CardWire> {
  const notApproved = (reason: 'rejected' | 'expired') =>
    new E2EEError(ErrorCode.DEVICE_NOT_APPROVED, `no existing device approved this one (${reason}); call register() to ask again`, {
      details: { reason, cardId: pending.cardId },
    });
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, pollMs));
    try {
      const { status, card } = await api.deviceRequestStatus(pending.cardId);
      if (status === 'rejected') throw notApproved('rejected');
      if (status === 'approved' && card?.id === pending.cardId) return card;
    } catch (err) {
      if (isE2EEError(err, ErrorCode.DEVICE_NOT_APPROVED)) throw err;
      if (isE2EEError(err, ErrorCode.NOT_FOUND)) throw notApproved('expired');
      const status = answerStatus(err);
      if (status !== null && status !== 429 && status < 500) throw err;
    }
    if (Date.now() / 1000 > pending.expiresAt) throw notApproved('expired');
  }
}
