/**
 * What the demo needs from its server besides the client library: the demo login
 * (POST /v1/session, demo mode only), the AppKey pinned on first use, and the signed-in
 * session kept in localStorage so that a reload stays signed in.
 */

import { E2EEError, ErrorCode } from '../../index.js';

const STORAGE = 'twilio-e2ee-demo';

export type Role = 'member' | 'agent';

export interface Session {
  identity: string;
  /** The app JWT from the demo login; its `sub` is the identity. */
  token: string;
  role: Role;
  deviceName: string;
}

async function fetchJson(path: string, init?: RequestInit): Promise<{ status: number; body: unknown }> {
  let response: Response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new E2EEError(ErrorCode.NETWORK_ERROR, 'The server cannot be reached. Is `npm start` still running?');
  }
  let body: unknown = null;
  try {
    body = await response.json();
  } catch {
    // error pages without JSON: the status says enough
  }
  return { status: response.status, body };
}

function errorMessage(body: unknown): string | undefined {
  return (body as { error?: { message?: string } } | null)?.error?.message;
}

/**
 * The demo login: an app token for any identity (the server must be in demo mode). A refusal is
 * an E2EEError with a message the sign-in screen shows as it is.
 */
export async function demoLogin(identity: string): Promise<string> {
  const { status, body } = await fetchJson('/v1/session', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ identity }),
  });
  if (status === 200) return (body as { token: string }).token;
  if (status === 404) {
    throw new E2EEError(ErrorCode.NOT_FOUND, 'Demo sign-in is off on this server (DEMO_MODE is not on). Your app signs users in with its own identity provider.', { details: { status } });
  }
  if (status === 400) throw new E2EEError(ErrorCode.BAD_REQUEST, errorMessage(body) ?? 'That name cannot be used.', { details: { status } });
  throw new E2EEError(ErrorCode.SERVER_ERROR, `The server refused the sign-in (${status}${errorMessage(body) ? `: ${errorMessage(body)}` : ''}).`, { details: { status } });
}

/** The `exp` of a JWT in ms, or null. Decoded only: the server verifies tokens. */
export function tokenExpiry(token: string): number | null {
  try {
    const payload = JSON.parse(atob(token.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/'))) as { exp?: unknown };
    return typeof payload.exp === 'number' ? payload.exp * 1000 : null;
  } catch {
    return null;
  }
}

export function loadSession(): Session | null {
  try {
    const session = JSON.parse(localStorage.getItem(`${STORAGE}:session`) ?? 'null') as Session | null;
    return session && typeof session.identity === 'string' && typeof session.token === 'string' ? session : null;
  } catch {
    return null;
  }
}

export function saveSession(session: Session | null): void {
  if (session) localStorage.setItem(`${STORAGE}:session`, JSON.stringify(session));
  else localStorage.removeItem(`${STORAGE}:session`);
}

export interface PinnedKey {
  publicKey: string;
  appKeyId: string;
  pinnedAt: number;
}

export type AppKeyCheck =
  | { state: 'pinned'; key: PinnedKey; firstUse: boolean }
  /** The server now presents another AppKey: cards it signs are not trusted until the user decides. */
  | { state: 'changed'; key: PinnedKey; served: { publicKey: string; appKeyId: string } }
  /** Not pinned yet and the server cannot be reached. */
  | { state: 'unreachable' };

function loadPin(): PinnedKey | null {
  try {
    return JSON.parse(localStorage.getItem(`${STORAGE}:app-key`) ?? 'null') as PinnedKey | null;
  } catch {
    return null;
  }
}

export function pinAppKey(served: { publicKey: string; appKeyId: string }): PinnedKey {
  const key = { ...served, pinnedAt: Date.now() };
  localStorage.setItem(`${STORAGE}:app-key`, JSON.stringify(key));
  return key;
}

/**
 * Trust on first use: the AppKey the server presents the first time is pinned in this browser,
 * and every card is verified under the pin from then on. A different key later is reported,
 * never silently accepted.
 */
export async function checkAppKey(): Promise<AppKeyCheck> {
  const pin = loadPin();
  let served: { publicKey: string; appKeyId: string } | null = null;
  try {
    const { status, body } = await fetchJson('/v1/app-key');
    if (status === 200) served = body as { publicKey: string; appKeyId: string };
  } catch {
    // offline: use the pin if there is one
  }
  if (!pin) return served ? { state: 'pinned', key: pinAppKey(served), firstUse: true } : { state: 'unreachable' };
  if (served && served.publicKey !== pin.publicKey) return { state: 'changed', key: pin, served };
  return { state: 'pinned', key: pin, firstUse: false };
}

/** Small per-user settings of the demo (notices, verified safety numbers), in localStorage. */
export const prefs = {
  get<T>(key: string, fallback: T): T {
    try {
      const text = localStorage.getItem(`${STORAGE}:${key}`);
      return text === null ? fallback : (JSON.parse(text) as T);
    } catch {
      return fallback;
    }
  },
  set(key: string, value: unknown): void {
    try {
      localStorage.setItem(`${STORAGE}:${key}`, JSON.stringify(value));
    } catch {
      // storage full or disabled: the setting lasts for this page only
    }
  },
};
