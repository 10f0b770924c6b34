/**
 * `npm run bench:lookup` (`npx tsx bench/lookup-proofs.ts [sizes...]`): what the transparency log
 * adds to a card lookup (issue 16: at most 1.5x the bytes and 1.2x the client time of the lookup
 * without it). A real server (bench/server-child.ts in its own process) on a log generated
 * straight into its SQLite tables (as bench/log.ts does), then 5 identities with 2 devices each
 * registered over HTTP. One GET /v1/cards for the 5 answers both shapes: as served (with `log`),
 * and the same answer with `log` removed (the shape before the log). The client's work on each:
 * parse the body and verify every card's countersignature (verifyCard); with the log also open the
 * checkpoint note under the LogKey and verify each card's inclusion proof (verifyLoggedCard), as
 * a client meeting that checkpoint and those cards for the first time does (client/log-cards.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ApiPath, type AppKeyResponse, type CardsLookupResponse, type LogKeyResponse } from '../shared/api.js';
import { trustAppKeys, verifyCard } from '../shared/card.js';
import { ready } from '../shared/index.js';
import { verifyLoggedCard } from '../shared/log-card.js';
import { openCheckpoint, type CheckpointTrust } from '../shared/log-checkpoint.js';
import { noteVerifierFromKey } from '../shared/signed-note-keys.js';
import { openSqliteStore } from '../server/store/sqlite.js';
import { startBenchServer, type BenchServer } from './child.js';
import { generateLog } from './log-fixture.js';
import { newRegistration } from './fixtures.js';
import { api, registerCard, tokenFor } from './server.js';
import { interleaved, median, round } from './stats.js';

const IDENTITIES = 5;
const DEVICES = 2;
const RUNS = 1000;
/** Registrations of other identities, one card each, that fill the log around the measured ones. */
const OTHERS = { identityPrefix: 'other', eventsPerIdentity: 1 };


async function getText(server: BenchServer, path: string, token: string): Promise<string> {
  const response = await fetch(server.appUrl + path, { headers: { authorization: `Bearer ${token}` } });
  if (response.status !== 200) throw new Error(`GET ${path}: ${response.status} ${await response.text()}`);
  return response.text();
}

async function measure(size: number): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'e2ee-bench-lookup-'));
  await (await openSqliteStore({ dataDir })).close(); // the tables
  // The 5 identities' cards in the middle of the log, as most cards are: proofs of full depth.
  generateLog(dataDir, Math.floor(size / 2), OTHERS);
  const identities = Array.from({ length: IDENTITIES }, (_, i) => `lookup-${i}`);
  const first = await startBenchServer({ DATA_DIR: dataDir, LOG_CHECKPOINT_INTERVAL_MS: '100' });
  try {
    for (const identity of identities) {
      for (let d = 0; d < DEVICES; d += 1) await registerCard(first, identity, newRegistration(identity, `device-${d}`).request);
    }
  } finally {
    await first.stop();
  }
  generateLog(dataDir, size, OTHERS);
  const server = await startBenchServer(first.env); // the same keys and data
  try {
    const token = tokenFor(server, 'bench-reader');
    const path = `${ApiPath.cards}?${identities.map((i) => `identity=${encodeURIComponent(i)}`).join('&')}`;
    // Until a checkpoint holds the 10 new events (every proof non-null).
    let text = '';
    for (let tries = 0; ; tries += 1) {
      text = await getText(server, path, token);
      const log = (JSON.parse(text) as CardsLookupResponse).log;
      if (log && Object.values(log.proofs).length === IDENTITIES * DEVICES && Object.values(log.proofs).every((p) => p.proof !== null)) break;
      if (tries > 100) throw new Error('no checkpoint holds the new cards after 10 s');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const { log: _log, ...withoutLog } = JSON.parse(text) as CardsLookupResponse;
    const today = JSON.stringify(withoutLog);
    const proof = Object.values(_log!.proofs)[0]!;
    const entryBytes = Buffer.byteLength(JSON.stringify(proof));
    const noteBytes = Buffer.byteLength(JSON.stringify(_log!.checkpoint));

    const appKey = (await api<AppKeyResponse>(server, 'GET', ApiPath.appKey, token)).json.publicKey;
    const trustedAppKeys = trustAppKeys([appKey]);
    const log = noteVerifierFromKey((await api<LogKeyResponse>(server, 'GET', ApiPath.logKey, token)).json.verifierKey);
    const trust: CheckpointTrust = { origin: log.name, log, witnesses: [] };

    // `warm`: a client that already proved these cards under this note (client/log-cards.ts, log-view.ts) checks neither again.
    const accept = (body: string, withProofs: boolean, warm = false) => {
      const answer = JSON.parse(body) as CardsLookupResponse;
      const cards = identities.flatMap((identity) => answer.cards[identity]!.map((wire) => verifyCard(wire, { trustedAppKeys, identity })));
      if (cards.length !== IDENTITIES * DEVICES) throw new Error(`bench: ${cards.length} cards accepted`);
      if (!withProofs || warm) return;
      const { checkpoint } = openCheckpoint(answer.log!.checkpoint, trust);
      for (const card of cards) verifyLoggedCard(card.id, card.identity, answer.log!.proofs[card.id], checkpoint);
    };
    const times = interleaved(() => accept(text, true), () => accept(today, false), RUNS, 100);
    const warm = interleaved(() => accept(text, true, true), () => accept(today, false), RUNS, 100);
    const roundTrip: number[] = [];
    for (let i = 0; i < 200; i += 1) {
      const t = performance.now();
      await getText(server, path, token);
      roundTrip.push(performance.now() - t);
    }

    const bytes = [Buffer.byteLength(text), Buffer.byteLength(today)] as const;
    const gzip = [gzipSync(text).length, gzipSync(today).length] as const;
    const ms = [median(times.subject), median(times.floor)] as const;
    console.log(
      `log of ${size} events (${proof.proof!.length} hashes per proof), ${IDENTITIES} identities x ${DEVICES} devices:\n` +
        `  bytes: with log ${bytes[0]}, without ${bytes[1]}: ${round(bytes[0] / bytes[1])}x (target <= 1.5x); gzip ${gzip[0]} vs ${gzip[1]}: ${round(gzip[0] / gzip[1])}x\n` +
        `  the log member: checkpoint note ${noteBytes} bytes, each card's entry (index, leaf, proof) ${entryBytes} bytes\n` +
        `  client parse + verify (median of ${RUNS}): with log ${round(ms[0])} ms, without ${round(ms[1])} ms: ${round(ms[0] / ms[1])}x (target <= 1.2x)\n` +
        `  the same lookup again, its cards and checkpoint already proven (only the larger body parsed): ${round(median(warm.subject) / median(warm.floor))}x\n` +
        `  GET round trip with the log (median of 200, server included): ${round(median(roundTrip))} ms`,
    );
  } finally {
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await ready();
const sizes = process.argv.slice(2).map(Number);
for (const size of sizes.length > 0 ? sizes : [1_000, 100_000]) await measure(size);
