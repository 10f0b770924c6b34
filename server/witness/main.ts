/**
 * `npm run witness` (`npx twilio-e2ee witness` where the package is installed): a transparency
 * log witness, a small process of its own, meant to run outside the infrastructure of the log it
 * watches. Commands:
 *
 *   witness keygen <name>   print a new witness key (WITNESS_KEY) and its verifier key
 *   witness init            create the state file (once, for a new witness)
 *   witness [serve]         answer add-checkpoint requests until SIGTERM or SIGINT
 *
 * Settings and flags: config.ts; what to run where: docs/API.md "Running a witness".
 */
import { pathToFileURL } from 'node:url';
import { NOTE_TYPE_COSIGNATURE_V1 } from '../../shared/constants.js';
import { isE2EEError, ErrorCode } from '../../shared/errors.js';
import { formatSignerKey, formatVerifierKey } from '../../shared/signed-note-keys.js';
import { isKeyName } from '../../shared/signed-note.js';
import { randomBytes, ready, signKeyPairFromSeed } from '../../shared/sodium.js';
import { loadWitnessConfig, parseWitnessArgs } from './config.js';
import { createWitnessServer } from './server.js';
import { initWitnessState, Witness, type LogLevel } from './witness.js';

const USAGE = `Usage: witness [serve | init | keygen <name>] [--key <file>] [--logs <vkey>]... [--state <file>] [--host <host>] [--port <port>] [--prefix </path>]
Settings: WITNESS_KEY or WITNESS_KEY_FILE, WITNESS_LOGS, WITNESS_STATE, WITNESS_HOST, WITNESS_PORT, WITNESS_PREFIX (docs/API.md "Running a witness").
`;

/** One JSON line per event on stdout, as the service logs: time, level, message, public fields only. */
function log(level: LogLevel, msg: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })}\n`);
}

function keygen(name: string | undefined): number {
  if (!isKeyName(name)) {
    process.stderr.write(`witness keygen: give the witness a name without spaces or "+", such as witness.example.org/w1\n\n${USAGE}`);
    return 2;
  }
  const seed = randomBytes(32);
  const vkey = formatVerifierKey(name, NOTE_TYPE_COSIGNATURE_V1, signKeyPairFromSeed(seed).publicKey);
  process.stdout.write(
    [
      `# twilio-e2ee witness key "${name}", generated ${new Date().toISOString()}. Keep WITNESS_KEY secret (a file of mode 0600 for WITNESS_KEY_FILE, or a secret store).`,
      '# Its verifier key: give it to the log\'s operator and to the clients that require this witness:',
      `# ${vkey}`,
      `WITNESS_KEY=${formatSignerKey(name, NOTE_TYPE_COSIGNATURE_V1, seed)}`,
      '',
    ].join('\n'),
  );
  return 0;
}

function serve(config: ReturnType<typeof loadWitnessConfig>): Promise<number> {
  const witness = new Witness({ key: config.key, logs: config.logs, statePath: config.statePath, log });
  const server = createWitnessServer({ witness, prefix: config.prefix, log });
  return new Promise((resolve) => {
    let closing = false;
    const stop = (signal: string) => {
      if (closing) return;
      closing = true;
      log('info', `${signal}: closing`);
      // Each request is answered in one synchronous step, so none is left half done.
      server.close(() => {
        witness.close();
        resolve(0);
      });
      server.closeAllConnections();
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    server.once('error', (err: NodeJS.ErrnoException) => {
      log('error', `cannot listen on ${config.host}:${config.port} (WITNESS_HOST, WITNESS_PORT): ${err.code ?? err.message}`);
      witness.close();
      resolve(1);
    });
    server.listen(config.port, config.host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : config.port;
      const origins = config.logs.map((vkey) => vkey.slice(0, vkey.indexOf('+')));
      log('info', `witness listening on http://${config.host}:${port}${config.prefix}/add-checkpoint`, { witness: witness.vkey, logs: [...new Set(origins)] });
      for (const origin of new Set(origins)) {
        const latest = witness.latest(origin);
        log('info', latest ? `${origin}: last cosigned size ${latest.size}` : `${origin}: nothing cosigned yet (its first checkpoint is trusted as it comes)`);
      }
    });
  });
}

/** Runs the witness command with `args` (after "witness"); resolves with the exit status. */
export async function witnessCommand(args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  await ready();
  try {
    const { positionals, env: settings } = parseWitnessArgs(args, env);
    const [command = 'serve', ...rest] = positionals;
    if (command === 'keygen' && rest.length <= 1) return keygen(rest[0]);
    if ((command !== 'serve' && command !== 'init') || rest.length > 0) {
      process.stderr.write(`witness: unknown command "${positionals.join(' ')}"\n\n${USAGE}`);
      return 2;
    }
    const config = loadWitnessConfig(settings, { logs: command === 'serve' });
    for (const warning of config.warnings) log('warn', warning);
    if (command === 'init') {
      const state = initWitnessState(config.statePath, config.key);
      log('info', `created the witness state ${config.statePath}`, { witness: state.witness });
      return 0;
    }
    return await serve(config);
  } catch (err) {
    if (!isE2EEError(err, ErrorCode.CONFIG_INVALID) && !isE2EEError(err, ErrorCode.NOTE_KEY_INVALID)) throw err;
    process.stderr.write(`witness: ${err.message}\n`);
    return 1;
  }
}

// Run as a script (npm run witness); the package's command imports witnessCommand instead.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await witnessCommand(process.argv.slice(2));
}
