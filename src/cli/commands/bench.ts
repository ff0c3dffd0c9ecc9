/**
 * `nbdcrypt bench SUBCOMMAND`: benchmarks that measure nbdcrypt next to a peer in the same
 * run and print the ratio (machines are often shared, so only ratios mean much).
 * Each subcommand lives in src/cli/bench/NAME.ts and exports `help` and `run(argv)`, exactly
 * like a top-level command. To add one (e.g. `e2e`), create that file and add one line to
 * `subcommands` below; nothing else changes.
 */
import { NbdcryptError } from '../../errors.js';
import type { Environment } from '../environment.js';

interface Subcommand {
  summary: string;
  load: () => Promise<{ help: string; run(argv: string[], env: Environment): Promise<number> }>;
}

const subcommands: Record<string, Subcommand> = {
  cipher: { summary: 'MB/s of each XTS engine vs openssl speed (one thread)', load: () => import('../bench/cipher.js') },
  e2e: { summary: 'end-to-end MB/s and IOPS of nbdcrypt vs nbd-server and an ssh -L tunnel (fio)', load: () => import('../bench/e2e.js') },
};

export const help = `Usage: nbdcrypt bench SUBCOMMAND [OPTIONS]

Measure nbdcrypt next to a peer measured in the same run, and print the ratio.

Subcommands:
${Object.entries(subcommands)
  .map(([name, s]) => `  ${name.padEnd(8)} ${s.summary}`)
  .join('\n')}

Run 'nbdcrypt bench SUBCOMMAND --help' for its options.
`;

export async function run(argv: string[], env: Environment): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h') {
    process.stdout.write(help);
    return name === undefined ? 2 : 0;
  }
  const sub = subcommands[name];
  if (!sub) throw new NbdcryptError('EUSAGE', `bench: unknown subcommand '${name}'; choose one of: ${Object.keys(subcommands).join(', ')}`);
  const mod = await sub.load();
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(mod.help);
    return 0;
  }
  return mod.run(rest, env);
}

/** main.ts leaves --help to us, so `bench cipher --help` shows the subcommand's help. */
export const handlesHelp = true;
