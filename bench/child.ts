/**
 * Starts bench/server-child.ts as a separate Node process (through the tests' server-process
 * launcher) with a fresh data directory, and stops it again. The child has an IPC channel and
 * exits by itself if this process goes away.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RATE_LIMITS_OFF } from '../test/support/env.js';
import { spawnServer } from '../test/support/server-process.js';
import type { ChildReady, ChildStats } from './server-child.js';

const CHILD = fileURLToPath(new URL('./server-child.ts', import.meta.url));

export interface BenchServer extends ChildReady {
  dataDir: string;
  /** The settings the server runs with (keys included: they are throwaway). */
  env: Record<string, string>;
  /** Output of the child so far (its log, errors). */
  output(): string;
  /** Cumulative CPU and event-loop use of the server process. */
  stats(): Promise<ChildStats>;
  stop(): Promise<void>;
}

/**
 * The environment of the server under test: the local demo configuration (no Twilio, local
 * relay), explicit throwaway keys and an HS256 secret (so the bench signs app tokens itself),
 * rate limits off, and the default log level (info) written to /dev/null by default.
 */
export function benchEnv(dataDir: string, overrides: Record<string, string> = {}): Record<string, string> {
  return {
    NODE_ENV: 'development',
    DATA_DIR: dataDir,
    APP_KEY: randomBytes(32).toString('base64url'),
    ORG_KEY: randomBytes(32).toString('base64url'),
    AUTH_JWT_SECRET: randomBytes(32).toString('base64url'),
    DEMO_MODE: 'true',
    ...RATE_LIMITS_OFF,
    LOG_LEVEL: 'info',
    ...(process.env.BENCH_SERVER_BACKEND ? { BENCH_SERVER_BACKEND: process.env.BENCH_SERVER_BACKEND } : {}),
    ...overrides,
  };
}

export async function startBenchServer(overrides: Record<string, string> = {}, timeoutMs = 60_000): Promise<BenchServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'e2ee-bench-'));
  const env = benchEnv(dataDir, overrides);
  // BENCH_CPU_PROF=<dir>: the server writes a V8 CPU profile there when it stops (for finding where time goes).
  const profile = process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_CPU_PROF] : [];
  // Its log (every request at info) is not read: the parent would spend the load generator's CPU on it.
  const server = spawnServer({ entry: CHILD, env, ipc: true, captureStdout: false, execArgv: profile });
  const { child, exited, output } = server;
  const ready = await new Promise<ChildReady>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`bench server did not start in ${timeoutMs} ms:\n${output()}`)), timeoutMs);
    child.on('message', (message: ChildReady) => {
      if (message?.type === 'ready') {
        clearTimeout(timer);
        resolve(message);
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`bench server exited:\n${output()}`));
    });
  });
  return {
    ...ready,
    dataDir,
    env,
    output,
    stats() {
      return new Promise<ChildStats>((resolve) => {
        const listener = (message: ChildStats) => {
          if (message?.type !== 'stats') return;
          child.off('message', listener);
          resolve(message);
        };
        child.on('message', listener);
        child.send({ type: 'stats' });
      });
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.send({ type: 'stop' });
        const killer = setTimeout(() => child.kill('SIGKILL'), 8000);
        await exited;
        clearTimeout(killer);
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
