import { beforeAll, describe, expect, it } from 'vitest';
import { E2EEError, ErrorCode, generateDeviceKeys, randomBytes, ready, safetyNumber, safetyNumberVersion } from '../../shared/index.js';

beforeAll(async () => {
  await ready();
});

describe('safety numbers', () => {
  const keys = () => generateDeviceKeys().signPublicKey;

  it('is 60 digits, the same from both sides, whatever the order of the keys', () => {
    const [a1, a2, b1] = [keys(), keys(), keys()];
    const fromAlice = safetyNumber({ identity: 'alice', signPublicKeys: [a1, a2] }, { identity: 'bob', signPublicKeys: [b1] });
    const fromBob = safetyNumber({ identity: 'bob', signPublicKeys: [b1] }, { identity: 'alice', signPublicKeys: [a2, a1] });
    expect(fromAlice).toMatch(/^\d{60}$/);
    expect(fromBob).toBe(fromAlice);
  });

  it('changes when a device is added, removed or swapped, or the identity differs', () => {
    const [a1, a2, b1, other] = [keys(), keys(), keys(), keys()];
    const base = safetyNumber({ identity: 'alice', signPublicKeys: [a1] }, { identity: 'bob', signPublicKeys: [b1] });
    const variants = [
      safetyNumber({ identity: 'alice', signPublicKeys: [a1, a2] }, { identity: 'bob', signPublicKeys: [b1] }),
      safetyNumber({ identity: 'alice', signPublicKeys: [a1] }, { identity: 'bob', signPublicKeys: [other] }),
      safetyNumber({ identity: 'alice', signPublicKeys: [a1] }, { identity: 'carol', signPublicKeys: [b1] }),
    ];
    for (const v of variants) expect(v).not.toBe(base);
    // Each side owns its 30 digits: a change on bob's side leaves alice's half alone.
    expect(variants[1]!.slice(0, 30)).toBe(base.slice(0, 30));
  });

  it('version 2 commits to each chain head: another head on one side changes that half only', () => {
    const [a1, b1] = [keys(), keys()];
    const [headA, headB] = [randomBytes(32), randomBytes(32)];
    const side = (identity: string, key: Uint8Array, chainHead?: Uint8Array) => ({ identity, signPublicKeys: [key], ...(chainHead && { chainHead }) });
    expect(safetyNumberVersion(side('alice', a1, headA))).toBe(2);
    expect(safetyNumberVersion(side('alice', a1))).toBe(1);
    const base = safetyNumber(side('alice', a1, headA), side('bob', b1, headB));
    expect(safetyNumber(side('bob', b1, headB), side('alice', a1, headA))).toBe(base);
    const moved = safetyNumber(side('alice', a1, headA), side('bob', b1, randomBytes(32)));
    expect(moved.slice(0, 30)).toBe(base.slice(0, 30));
    expect(moved.slice(30)).not.toBe(base.slice(30));
    // The same keys without heads (version 1) never give a version 2 number.
    expect(safetyNumber(side('alice', a1), side('bob', b1))).not.toBe(base);
  });

  it('refuses a head on one side only, and a head that is not 32 bytes', () => {
    const code = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        return (err as E2EEError).code;
      }
      return null;
    };
    expect(code(() => safetyNumber({ identity: 'a', signPublicKeys: [keys()], chainHead: randomBytes(32) }, { identity: 'b', signPublicKeys: [keys()] }))).toBe(ErrorCode.INVALID_ARGUMENT);
    const short = { identity: 'a', signPublicKeys: [keys()], chainHead: randomBytes(31) };
    expect(code(() => safetyNumber(short, { identity: 'b', signPublicKeys: [keys()], chainHead: randomBytes(32) }))).toBe(ErrorCode.INVALID_ARGUMENT);
  });

  it('needs at least one card on each side', () => {
    expect(() => safetyNumber({ identity: 'a', signPublicKeys: [] }, { identity: 'b', signPublicKeys: [keys()] })).toThrow(E2EEError);
  });
});
