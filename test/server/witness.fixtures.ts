/**
 * What the witness tests share: a log built with shared/merkle.ts and signed with a LogKey (no
 * service needed), and a real witness on a loopback port with its state in a temporary directory.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NOTE_TYPE_COSIGNATURE_V1, NOTE_TYPE_ED25519 } from '../../shared/constants.js';
import { utf8 } from '../../shared/encoding.js';
import { signCheckpoint } from '../../shared/log-checkpoint.js';
import { leafHash, MerkleTree } from '../../shared/merkle.js';
import { ed25519NoteSigner, formatSignerKey, formatVerifierKey } from '../../shared/signed-note-keys.js';
import { randomBytes } from '../../shared/sodium.js';
import { createWitnessServer } from '../../server/witness/server.js';
import { initWitnessState, Witness, type LogLevel } from '../../server/witness/witness.js';

export const ORIGIN = 'cards.example.com/log';

/** A log in memory: leaves appended, checkpoints signed by its LogKey, consistency proofs. */
export class TestLog {
  readonly tree = new MerkleTree();
  readonly seed: Uint8Array;
  constructor(
    readonly origin = ORIGIN,
    seed?: Uint8Array,
  ) {
    this.seed = seed ?? randomBytes(32);
  }

  /** The LogKey's verifier key, as the witness pins it. */
  get vkey(): string {
    return formatVerifierKey(this.origin, NOTE_TYPE_ED25519, ed25519NoteSigner(this.origin, this.seed).publicKey);
  }

  /** Appends `count` leaves, their bytes marked with `tag` (two logs with other tags fork). */
  grow(count: number, tag = 'honest'): this {
    for (let i = 0; i < count; i++) this.tree.append(leafHash(utf8(`${tag} event ${this.tree.size}`)));
    return this;
  }

  checkpoint(size = this.tree.size): string {
    return signCheckpoint({ origin: this.origin, size, rootHash: this.tree.root(size), extensions: [] }, ed25519NoteSigner(this.origin, this.seed));
  }

  proof = (oldSize: number, size: number): Uint8Array[] => this.tree.consistencyProof(oldSize, size);

  /** Another log under the same key sharing this one's first `shared` leaves: a fork. */
  fork(shared: number): TestLog {
    const other = new TestLog(this.origin, this.seed);
    for (let i = 0; i < shared; i++) other.tree.append(this.tree.node({ level: 0, index: i }));
    return other;
  }
}

/** A fresh witness key: the signer key text and its verifier key. */
export function witnessKey(name = 'witness.example.org/w1'): { key: string; vkey: string } {
  const seed = randomBytes(32);
  const key = formatSignerKey(name, NOTE_TYPE_COSIGNATURE_V1, seed);
  return { key, vkey: formatVerifierKey(name, NOTE_TYPE_COSIGNATURE_V1, ed25519NoteSigner(name, seed).publicKey) };
}

/** The secret part of a signer key: the base64 of its type and seed ("PRIVATE+KEY+<name>+<id>+<this>"). */
export function secretOf(key: string): string {
  return key.split('+').slice(4).join('+');
}

const dirs: string[] = [];
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'twilio-e2ee-witness-'));
  dirs.push(dir);
  return dir;
}
export function removeTempDirs(): void {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

export interface RunningWitness {
  url: string;
  port: number;
  witness: Witness;
  server: Server;
  /** Every line the witness logged, as JSON text. */
  logs: string[];
  close(): Promise<void>;
}

/** Starts a witness on a loopback port over the state at `statePath` (created when `init`). */
export async function startWitness(options: { key: string; logs: string[]; statePath: string; init?: boolean; now?: () => number; prefix?: string }): Promise<RunningWitness> {
  if (options.init) initWitnessState(options.statePath, options.key);
  const logs: string[] = [];
  const log = (level: LogLevel, msg: string, fields: Record<string, unknown> = {}) => logs.push(JSON.stringify({ level, msg, ...fields }));
  const witness = new Witness({ key: options.key, logs: options.logs, statePath: options.statePath, log, ...(options.now ? { now: options.now } : {}) });
  const server = createWitnessServer({ witness, log, ...(options.prefix ? { prefix: options.prefix } : {}) });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${options.prefix ?? ''}`,
    port,
    witness,
    server,
    logs,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      witness.close();
    },
  };
}

/** POSTs an add-checkpoint body as it is. */
export async function addCheckpoint(url: string, body: string | Uint8Array): Promise<{ status: number; type: string; text: string }> {
  const res = await fetch(`${url}/add-checkpoint`, { method: 'POST', body: typeof body === 'string' ? body : Buffer.from(body) });
  return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text() };
}
