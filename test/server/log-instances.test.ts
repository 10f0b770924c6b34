/**
 * Two app instances on one database make one log: registrations and revocations through both at
 * once, checkpoints published by both, and every checkpoint either serves extends the ones before
 * (consistency proofs verify between all of them). Also the witness hook: the cosignatures it
 * returns are served with the checkpoint and verify with the witness's key.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { twilioE2ee } from '../../server/plugin.js';
import type { WitnessSubmission } from '../../server/log.js';
import { loadConfig } from '../../server/config.js';
import { openStore } from '../../server/store/index.js';
import { ApiPath, type LogConsistencyResponse } from '../../shared/api.js';
import { fromB64u } from '../../shared/encoding.js';
import { openCheckpoint, type Checkpoint } from '../../shared/log-checkpoint.js';
import { cosignatureSigner, cosignatureVerifier } from '../../shared/log-cosignature.js';
import { verifyConsistency } from '../../shared/merkle.js';
import { parseNote, signNote } from '../../shared/signed-note.js';
import { noteVerifierFromKey } from '../../shared/signed-note-keys.js';
import type { CardWire } from '../../shared/index.js';
import { newDevice, postCard, revokeCard, session, testApp, testEnv, type ServerApp } from '../support/app.js';
import { describeEachStore } from '../support/stores.js';

const open = (server: ServerApp, note: string): Checkpoint =>
  openCheckpoint(note, { origin: server.config.log.origin, log: noteVerifierFromKey(server.config.log.verifierKey) }).checkpoint;

describeEachStore('one log from two instances', (stores) => {
  let a: ServerApp;
  let b: ServerApp;
  beforeAll(async () => {
    const env = { LOG_CHECKPOINT_INTERVAL_MS: '100' };
    [a, b] = await Promise.all([testApp(stores(), { env }), testApp(stores(), { env })]);
  });
  afterAll(() => Promise.all([a.app.close(), b.app.close()]));

  it('concurrent card changes through both, checkpoints from both: every checkpoint extends the earlier ones', async () => {
    const seen: Checkpoint[] = [];
    const watch = async () => {
      for (const server of [a, b]) seen.push(open(server, (await server.app.inject({ url: ApiPath.logCheckpoint })).body));
    };
    await watch();
    for (let round = 0; round < 4; round += 1) {
      const users = await Promise.all([session(a.app), session(b.app), session(a.app)]);
      const made = await Promise.all(
        users.flatMap((user, i) => [0, 1].map(async (j) => {
          const device = await newDevice(user.identity);
          const server = (i + j) % 2 ? a : b;
          const res = await postCard(server.app, user, device.request);
          return { user, device, card: res.json<CardWire>(), server };
        })),
      );
      await Promise.all(made.filter((_, i) => i % 3 === 0).map(({ user, device, card, server }) => revokeCard(server === a ? b.app : a.app, user, card.id, { keys: device.keys, cardId: card.id })));
      await new Promise((resolve) => setTimeout(resolve, 120));
      await Promise.all([a.app.e2ee.log.publish(), b.app.e2ee.log.publish()]);
      await watch();
    }
    const sizes = [...new Set(seen.map((c) => c.size))].sort((x, y) => x - y);
    expect(sizes.length).toBeGreaterThan(3);
    // One root per size, whichever instance served it.
    for (const size of sizes) expect(new Set(seen.filter((c) => c.size === size).map((c) => Buffer.from(c.rootHash).toString('hex'))).size).toBe(1);
    // Each checkpoint extends every earlier one (proofs from either instance).
    const latest = seen.reduce((x, y) => (y.size > x.size ? y : x));
    for (const old of seen.filter((c) => c.size > 0 && c.size < latest.size)) {
      const server = old.size % 2 ? a : b;
      const { proof } = (await server.app.inject({ url: `${ApiPath.logConsistency}?from=${old.size}&to=${latest.size}` })).json<LogConsistencyResponse>();
      verifyConsistency({ size1: old.size, size2: latest.size, root1: old.rootHash, root2: latest.rootHash, proof: proof.map((h) => fromB64u(h)) });
    }
    expect(await a.store.logSize()).toBe(await b.store.logSize());
  });

  it('an instance whose PUBLIC_URL moved the log origin, or with another LOG_KEY, refuses to start and says what to set', async () => {
    const moved = await testApp(stores(), { env: { PUBLIC_URL: 'https://moved.example.com' } }).catch((e: unknown) => e);
    expect(moved).toMatchObject({ code: 'CONFIG_INVALID', message: `LOG_ORIGIN is "moved.example.com/log" but this store's log is "${a.config.log.origin}", the origin its clients pin: set LOG_ORIGIN=${a.config.log.origin}` });
    const rekeyed = await testApp(stores(), { env: { LOG_KEY: 'A'.repeat(43) } }).catch((e: unknown) => e);
    expect(rekeyed).toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringMatching(/^LOG_KEY must be the key that signed this store's checkpoints/) });
    const kept = await testApp(stores(), { env: { PUBLIC_URL: 'https://moved.example.com', LOG_ORIGIN: a.config.log.origin } });
    await kept.app.close();
  });
});

describe('the witness hook', () => {
  let server: ServerApp['app'];
  let origin: string;
  let verifierKey: string;
  let witness: ReturnType<typeof cosignatureSigner>;
  const submissions: WitnessSubmission[] = [];
  beforeAll(async () => {
    const config = await loadConfig(testEnv({ LOG_CHECKPOINT_INTERVAL_MS: '100' }));
    witness = cosignatureSigner('witness.example/w1', new Uint8Array(32).fill(3));
    ({ origin, verifierKey } = config.log);
    const store = await openStore({ dataDir: mkdtempSync(join(tmpdir(), 'twilio-e2ee-witness-')) });
    server = Fastify();
    // A witness that cosigns what it is given (checking consistency is the witness's own job).
    const logWitness = async (submission: WitnessSubmission) => {
      submissions.push(submission);
      const cosigned = signNote(parseNote(submission.note).text, [witness]);
      return [cosigned.slice(cosigned.indexOf('\n\n') + 2)];
    };
    server.addHook('onClose', () => store.close());
    await server.register(twilioE2ee, { config, store, demoMode: true, logWitness });
    await server.ready();
  });
  afterAll(() => server.close());

  it('hands each new checkpoint to the witnesses and serves their cosignatures with it', async () => {
    const alice = await session(server);
    await postCard(server, alice, (await newDevice(alice.identity)).request);
    await new Promise((resolve) => setTimeout(resolve, 120));
    await server.e2ee.log.publish();
    await new Promise((resolve) => setTimeout(resolve, 50)); // the witness call runs after the publish
    const note = (await server.inject({ url: ApiPath.logCheckpoint })).body;
    const opened = openCheckpoint(note, { origin, log: noteVerifierFromKey(verifierKey), witnesses: [cosignatureVerifier(witness.name, witness.publicKey)] });
    expect(opened.checkpoint.size).toBe(1);
    expect(opened.cosignatures.map((c) => c.name)).toEqual(['witness.example/w1']);
    expect(submissions.at(-1)).toMatchObject({ size: 1, previousSize: 0, consistency: [] });
  });
});
