/**
 * `nbdcrypt COMMAND ...`: finds the command module and maps errors to exit statuses.
 * Each command lives in src/cli/commands/NAME.ts and exports `run(argv): Promise<number>`
 * plus a `help` string shown by `nbdcrypt NAME --help`.
 */
import { isNbdcryptError } from '../errors.js';
import { exitCodes } from './exit-status.js';
import { log, setLogLevel } from '../log.js';
import { readEnvironment, type Environment } from './environment.js';

interface CommandModule {
  /** `env`: the environment switches, read once at start-up (environment.ts). */
  run(argv: string[], env: Environment): Promise<number>;
  help: string;
  /** The command prints its own --help (e.g. one with subcommands, like bench). */
  handlesHelp?: boolean;
}

const commands: Record<string, { summary: string; load: () => Promise<CommandModule> }> = {
  serve: { summary: 'open a LUKS2 or LUKS1 volume and serve its plaintext over NBD', load: () => import('./commands/serve.js') },
  format: { summary: 'create a LUKS2 (or LUKS1) volume (cryptsetup-compatible)', load: () => import('./commands/format.js') },
  dump: { summary: 'print the LUKS2 or LUKS1 header like cryptsetup luksDump', load: () => import('./commands/dump.js') },
  key: { summary: 'add, remove or change a passphrase (keyslot)', load: () => import('./commands/key.js') },
  header: { summary: 'back up or restore the LUKS2 or LUKS1 header', load: () => import('./commands/header.js') },
  convert: { summary: 'convert between LUKS1 and LUKS2 in place (like cryptsetup convert)', load: () => import('./commands/convert.js') },
  bench: { summary: 'measure cipher and end-to-end throughput against peers', load: () => import('./commands/bench.js') },
  status: { summary: 'list the kernel nbd devices nbdcrypt attached', load: () => import('./commands/status.js') },
  detach: { summary: 'disconnect a kernel nbd device (/dev/nbdN)', load: () => import('./commands/detach.js') },
  demo: { summary: 'serve a local encrypted demo image (no remote needed)', load: () => import('./commands/demo.js') },
};

export const usage = `Usage: nbdcrypt COMMAND [OPTIONS]

An encrypting NBD proxy: serves the plaintext of a LUKS2 or LUKS1 volume (aes-xts-plain64,
or twofish, serpent and aes in the modes cryptsetup offers) to the kernel's nbd-client on
localhost while the remote only ever stores ciphertext.

Commands:
${Object.entries(commands)
  .map(([name, c]) => `  ${name.padEnd(8)} ${c.summary}`)
  .join('\n')}

Run 'nbdcrypt COMMAND --help' for a command's options and exit statuses.
NBDCRYPT_DEBUG=1 adds the stack trace to error messages.
`;

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage);
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-V') {
    process.stdout.write('nbdcrypt 0.1.0\n');
    return 0;
  }
  const entry = commands[name];
  if (!entry) {
    log.error(`unknown command '${name}'; run 'nbdcrypt --help' for the list`);
    return 2;
  }
  const mod = await entry.load();
  if (!mod.handlesHelp && (rest.includes('--help') || rest.includes('-h'))) {
    process.stdout.write(mod.help);
    return 0;
  }
  let debug = false;
  try {
    const env = readEnvironment();
    debug = env.debug;
    setLogLevel(env.logLevel);
    return await mod.run(rest, env);
  } catch (e) {
    if (isNbdcryptError(e)) {
      log.error(e.message);
      if (debug && e.stack) process.stderr.write(`${e.stack}\n`);
      return exitCodes[e.code] ?? 1;
    }
    log.error(internalErrorLine(e, debug));
    return 1;
  }
}

/** A bug, not a user error: one line, and the stack trace only with the debug switch. */
function internalErrorLine(e: unknown, debug: boolean): string {
  const what = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  if (debug) return `internal error: ${e instanceof Error ? (e.stack ?? what) : what}`;
  return `internal error: ${what.split('\n')[0]}; this is a bug in nbdcrypt — rerun with NBDCRYPT_DEBUG=1 for the stack trace and report it`;
}
