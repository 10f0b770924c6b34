import { beforeAll, describe, expect, it } from 'vitest';
import { E2EEError, generateDeviceKeys, ready, safetyNumber } from '../../shared/index.js';

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

  it('needs at least one card on each side', () => {
    expect(() => safetyNumber({ identity: 'a', signPublicKeys: [] }, { identity: 'b', signPublicKeys: [keys()] })).toThrow(E2EEError);
  });
});
