/**
 * The OrgKeys a history service holds (docs/API.md "Rotating the OrgKey"): the newest (ORG_KEY),
 * which the OrgCard is made from and every copy is stored under, and earlier ones
 * (ORG_KEY_PREVIOUS), kept only to open copies wrapped before a rotation until rewrap-history has
 * moved them to the newest.
 *
 * Each stored copy records the id of the key its orgWrap is for, so a read opens it with that key
 * alone. Copies without an id (stored before ids were recorded, and orgWraps posted by clients)
 * are tried key by key, starting with the key that last opened one: runs of copies under one key
 * cost one attempt each, not one per key.
 */
import { toHex } from '../shared/encoding.js';
import { E2EEError, ErrorCode, isE2EEError } from '../shared/errors.js';
import { openRewrap, type ParsedEnvelope } from '../shared/envelope.js';
import type { OrgKey } from '../shared/keys.js';
import { blake2b256 } from '../shared/sodium.js';

/** Bytes of BLAKE2b-256 kept in an OrgKey id (as the AppKey's appKeyId: 64 bits, 16 hex). */
const ORG_KEY_ID_BYTES = 8;

/** An OrgKey's id: hex of the first 8 bytes of BLAKE2b-256(OrgCard box public key). Not secret. */
export function orgKeyIdOf(orgKey: OrgKey): string {
  return toHex(blake2b256(orgKey.keys.boxPublicKey).subarray(0, ORG_KEY_ID_BYTES));
}

export interface OpenedOrgWrap {
  /** The message's content key (not yet checked against the envelope's commitment). */
  cek: Uint8Array;
  /** The id of the OrgKey that opened it. */
  orgKeyId: string;
}

export class OrgKeyRing {
  readonly newest: OrgKey;
  readonly newestId: string;
  /** Every key by id, the newest first. */
  private readonly byId = new Map<string, OrgKey>();
  /** The key that last opened an orgWrap with no recorded id: tried first for the next one. */
  private lastTried: string;

  constructor(newest: OrgKey, previous: readonly OrgKey[] = []) {
    this.newest = newest;
    this.newestId = orgKeyIdOf(newest);
    for (const key of [newest, ...previous]) this.byId.set(orgKeyIdOf(key), key);
    this.lastTried = this.newestId;
  }

  /** Whether the ring holds the OrgKey with this id. */
  has(orgKeyId: string): boolean {
    return this.byId.has(orgKeyId);
  }

  /**
   * Opens an orgWrap of `envelope`: with the key `orgKeyId` names, or, without one, with whichever
   * key opens it.
   * @throws E2EEError REWRAP_MALFORMED; ENVELOPE_DECRYPT_FAILED when no key opens it. A plain
   *   Error (a 500, logged) when the named key is not configured: an operator dropped it from
   *   ORG_KEY_PREVIOUS before rewrap-history had moved its copies.
   */
  open(orgWrap: string, envelope: ParsedEnvelope, orgKeyId?: string): OpenedOrgWrap {
    if (orgKeyId !== undefined) {
      const key = this.byId.get(orgKeyId);
      if (!key) {
        throw new Error(`a history copy is wrapped for OrgKey ${orgKeyId}, which is neither ORG_KEY nor in ORG_KEY_PREVIOUS`);
      }
      return { cek: openRewrap(orgWrap, envelope, key.keys), orgKeyId };
    }
    const order = [this.lastTried, ...[...this.byId.keys()].filter((id) => id !== this.lastTried)];
    let firstFailure: unknown;
    for (const id of order) {
      try {
        const cek = openRewrap(orgWrap, envelope, this.byId.get(id)!.keys);
        this.lastTried = id;
        return { cek, orgKeyId: id };
      } catch (err) {
        // Only "not for this key" moves on to the next key; a malformed orgWrap is malformed for all.
        if (!isE2EEError(err, ErrorCode.ENVELOPE_DECRYPT_FAILED)) throw err;
        firstFailure ??= err;
      }
    }
    if (this.byId.size === 1) throw firstFailure;
    throw new E2EEError(ErrorCode.ENVELOPE_DECRYPT_FAILED, `the orgWrap opens with none of the ${this.byId.size} OrgKeys (ORG_KEY, ORG_KEY_PREVIOUS)`);
  }
}
