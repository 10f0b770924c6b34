/**
 * The standalone server as a real process (server/main.ts, as `npm start` runs it), for the
 * tests of start-up, configuration errors, graceful shutdown and the complete log output.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = fileURLToPath(new URL('../../server/main.ts', import.meta.url));
// The tsx loader in this node process: signals reach the server itself, not a wrapper.
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

export interface ServerProcess {
  /** http://127.0.0.1:<port> */
  url: string;
  child: ChildProcess;
  /** Everything written to stdout and stderr so far. */
  output(): string;
  /** Sends `signal` and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface RunOptions {
  /** The whole environment of the process (nothing inherited but PATH). */
  env: Record<string, string>;
  /** Working directory (where .env and the default ./.data are looked for). */
  cwd?: string;
  /** Run `npm start` instead of node + tsx directly. */
  npmStart?: boolean;
}

function run(options: RunOptions): { child: ChildProcess; output(): string; exited: Promise<number | null> } {
  const env = { PATH: process.env.PATH ?? '', ...options.env };
  const child = options.npmStart
    ? spawn('npm', ['start', '--silent'], { cwd: REPO, env, detached: true })
    : spawn(process.execPath, ['--import', TSX_LOADER, MAIN], { cwd: options.cwd ?? REPO, env });
  let text = '';
  child.stdout!.on('data', (chunk: Buffer) => (text += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => text, exited };
}

/** Starts the server (PORT=0 unless given) and resolves once it listens. */
export async function startServer(options: RunOptions, timeoutMs = 30_000): Promise<ServerProcess> {
  const proc = run({ ...options, env: { PORT: '0', HOST: '127.0.0.1', ...options.env } });
  const port = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      // Never leave a half-started server behind.
      if (options.npmStart) process.kill(-proc.child.pid!, 'SIGKILL');
      else proc.child.kill('SIGKILL');
      reject(new Error(`server did not start:\n${proc.output()}`));
    }, timeoutMs);
    const check = () => {
      const match = /listening on http:\/\/[^:]+:(\d+)/.exec(proc.output());
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    };
    proc.child.stdout!.on('data', check);
    proc.exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`server exited:\n${proc.output()}`));
    });
  });
  return {
    url: `http://127.0.0.1:${port}`,
    child: proc.child,
    output: proc.output,
    async stop(signal = 'SIGTERM') {
      if (proc.child.exitCode !== null) return proc.child.exitCode;
      // npm does not pass signals on to the script, so `npm start` is stopped as a process group.
      if (options.npmStart) process.kill(-proc.child.pid!, signal);
      else proc.child.kill(signal);
      return proc.exited;
    },
  };
}

/** Runs the server expecting it to exit by itself (e.g. on a configuration error). */
export async function runToExit(options: RunOptions): Promise<{ code: number | null; output: string }> {
  const proc = run(options);
  const code = await proc.exited;
  return { code, output: proc.output() };
}
