/**
 * The server as a real process: server/main.ts as `npm start` runs it (start-up, configuration
 * errors, graceful shutdown, complete log output, crashes and load, where the load generator must
 * not share the server's event loop), or another entry point such as the benchmark's server.
 * Nothing is inherited from this environment but PATH.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { createRequire } from 'node:module';
import { connect, createServer, type AddressInfo } from 'node:net';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { sleep } from './concurrency.js';
import { RATE_LIMITS_OFF, TEST_APP_KEY, TEST_ORG_KEY } from './env.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = fileURLToPath(new URL('../../server/main.ts', import.meta.url));
// The tsx loader in this node process: signals (SIGKILL included) reach the server itself, not a wrapper.
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
/** The output kept per process (its tail): enough for every log assertion, bounded under load. */
const OUTPUT_CHARS = 1_000_000;
/** Log levels at which the server does not say it listens: readiness is then the open port alone. */
const QUIET_LEVELS = new Set(['warn', 'error', 'fatal', 'silent']);

export interface SpawnOptions {
  /** The whole environment of the process (nothing inherited but PATH). */
  env: Record<string, string>;
  /** The script to run (default server/main.ts). */
  entry?: string;
  /** Working directory (where .env and the default ./.data are looked for). */
  cwd?: string;
  /** Run `npm start` instead of node + tsx directly. */
  npmStart?: boolean;
  /** Open an IPC channel to the child (for an entry point that reports over it). */
  ipc?: boolean;
  /** Keep what the child writes to stdout (default true; a server logging every request under load writes too much). */
  captureStdout?: boolean;
  /** Extra node options before the script, e.g. --cpu-prof. */
  execArgv?: string[];
}

export interface SpawnedServer {
  child: ChildProcess;
  /** The last OUTPUT_CHARS the process wrote (stdout and stderr). */
  output(): string;
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>;
  /** Sends `signal` (SIGTERM by default) unless it already exited, and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts the process; the one place a test or benchmark launches a server. */
export function spawnServer(options: SpawnOptions): SpawnedServer {
  const env = { PATH: process.env.PATH ?? '', ...options.env };
  const stdio: StdioOptions = ['ignore', options.captureStdout === false ? 'ignore' : 'pipe', 'pipe', ...(options.ipc ? ['ipc' as const] : [])];
  const child: ChildProcess = options.npmStart
    ? spawn('npm', ['start', '--silent'], { cwd: REPO, env, detached: true, stdio })
    : spawn(process.execPath, ['--import', TSX_LOADER, ...(options.execArgv ?? []), options.entry ?? MAIN], { cwd: options.cwd ?? REPO, env, stdio });
  let text = '';
  const keep = (chunk: Buffer) => {
    text = (text + chunk.toString()).slice(-OUTPUT_CHARS);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const running = () => child.exitCode === null && child.signalCode === null;
  // npm does not pass signals on to the script, so `npm start` is signalled as a process group.
  const signal = (name: NodeJS.Signals) => (options.npmStart ? process.kill(-child.pid!, name) : child.kill(name));
  return {
    child,
    output: () => text,
    exited,
    async stop(name = 'SIGTERM') {
      if (running()) signal(name);
      return exited;
    },
  };
}

export interface ServerProcess extends SpawnedServer {
  /** http://127.0.0.1:<port> */
  url: string;
  port: number;
}

export interface StartOptions extends Omit<SpawnOptions, 'ipc' | 'entry'> {
  /** Listen on this port (a restart on the same address); default PORT from `env`, else a free one. */
  port?: number;
  timeoutMs?: number;
}

/** A loopback port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.on('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * Starts server/main.ts on 127.0.0.1 and resolves once it is ready: when it logs that it listens,
 * or (at a log level that hides that line) when its port accepts connections.
 */
export async function startServerProcess(options: StartOptions): Promise<ServerProcess> {
  const port = options.port ?? (Number(options.env.PORT) || (await freePort()));
  const env: Record<string, string> = { HOST: '127.0.0.1', ...options.env, PORT: String(port) };
  const server = spawnServer({ ...options, env });
  const quiet = QUIET_LEVELS.has(env.LOG_LEVEL ?? '');
  const timeoutMs = options.timeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (server.child.exitCode !== null || server.child.signalCode !== null) throw new Error(`server exited while starting:\n${server.output()}`);
    if (quiet ? await accepts(port) : /listening on http:\/\/[^:]+:\d+/.test(server.output())) break;
    if (Date.now() > deadline) {
      // Never leave a half-started server behind.
      await server.stop('SIGKILL');
      throw new Error(`server did not start within ${timeoutMs} ms:\n${server.output()}`);
    }
    await sleep(50);
  }
  return { ...server, url: `http://127.0.0.1:${port}`, port };
}

/** Stops a server process if it still runs: SIGTERM (graceful), SIGKILL after 15 s. */
export async function stopServerProcess(server: SpawnedServer | null | undefined): Promise<void> {
  if (!server) return;
  const timer = setTimeout(() => void server.stop('SIGKILL'), 15_000);
  try {
    await server.stop('SIGTERM');
  } finally {
    clearTimeout(timer);
  }
}

/** Runs the server expecting it to exit by itself (e.g. on a configuration error). */
export async function runToExit(options: SpawnOptions): Promise<{ code: number | null; output: string }> {
  const server = spawnServer(options);
  const code = await server.exited;
  return { code, output: server.output() };
}

/**
 * The environment of a server under load: demo sessions, the process's keys, every rate limit
 * off, no web client, and warnings only (so the load generator does not read a log line per request).
 */
export function quietServerEnv(extra: Record<string, string>): Record<string, string> {
  return { APP_KEY: TEST_APP_KEY, ORG_KEY: TEST_ORG_KEY, LOG_LEVEL: 'warn', ...RATE_LIMITS_OFF, SERVE_DEMO: 'false', ...extra };
}
