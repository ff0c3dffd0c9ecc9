/**
 * What the nbdcrypt in this tree can do for the VM test: `format` is read from its --help,
 * `serve` is probed by starting it (best way first: encrypted from a remote, then weaker
 * ones), so the harness keeps running and says precisely what is missing when a piece
 * regresses; and how to make a LUKS2 volume with a cheap KDF (the guest's dm-crypt open must
 * not spend 1 GiB or seconds of TCG time on argon2). Whatever is missing is a test failure,
 * never a skip. LUKS2: docs/formats.md.
 */
import { nbdcryptBin, nbdcryptHelp, startNbdcryptServe } from './host-peers.js';
import { run, type Proc } from '../../peers/tools.js';

export interface NbdcryptFeatures {
  /** `format TARGET --key-file F` writes a LUKS2 header. */
  format: boolean;
  formatHelp: string;
}

/** Serving is probed by starting it (see serveFirst); formatting by its help text. */
export function detectFeatures(): NbdcryptFeatures {
  const format = nbdcryptHelp('format');
  return { format: /--key-file/.test(format), formatHelp: format };
}

export interface ServeChoice {
  args: string[];
  /** Serves a LUKS2 volume (decrypting), not raw bytes. */
  encrypted: boolean;
  /** Stores on a remote NBD server (the link the test can cut). */
  remote: boolean;
}

/** Starts the first candidate that comes up; each one that failed before it is recorded in
 * `gaps` with nbdcrypt's own error, so the test can say precisely what is missing. */
export async function serveFirst(candidates: ServeChoice[], socket: string, name: string, gaps: string[]): Promise<{ proc: Proc; choice: ServeChoice }> {
  const errors: string[] = [];
  for (const c of candidates) {
    const what = `nbdcrypt serve ${c.args.join(' ')} (${c.encrypted ? 'encrypted' : 'unencrypted'}${c.remote ? ', remote' : ''})`;
    try {
      return { proc: await startNbdcryptServe(c.args, socket, name), choice: c };
    } catch (e) {
      const msg = (e as Error).message.split('\n').slice(-3).join(' ').slice(-600);
      gaps.push(`${what} did not start: ${msg}`);
      errors.push(msg);
    }
  }
  throw new Error(`no way to serve ${name} with nbdcrypt: ${errors.join(' | ')}`);
}

/** Cheap-KDF options, in whatever spelling `nbdcrypt format --help` shows. */
function cheapKdf(help: string): string[] {
  if (help.includes('--pbkdf-force-iterations')) return ['--pbkdf', 'pbkdf2', '--pbkdf-force-iterations', '1000'];
  if (help.includes('--iter-time') && help.includes('--pbkdf')) return ['--pbkdf', 'pbkdf2', '--iter-time', '50'];
  if (help.includes('--pbkdf-memory')) return ['--pbkdf-memory', '32768', ...(help.includes('--iter-time') ? ['--iter-time', '100'] : [])];
  if (help.includes('--iter-time')) return ['--iter-time', '100'];
  return [];
}

/** Writes a LUKS2 header on `image` (already sized): with nbdcrypt format when it exists,
 * else with the host's cryptsetup (no device-mapper needed for luksFormat on a file).
 * Returns the command line used, for the log. */
export function formatVolume(f: NbdcryptFeatures, cryptsetup: string, image: string, keyFile: string, sectorSize: 512 | 4096): string {
  if (f.format) {
    const args = ['format', image, '--key-file', keyFile, '--sector-size', String(sectorSize), ...cheapKdf(f.formatHelp)];
    if (/--batch-mode/.test(f.formatHelp)) args.push('--batch-mode');
    else if (/--yes/.test(f.formatHelp)) args.push('--yes');
    run(process.execPath, [nbdcryptBin, ...args], { timeoutMs: 120_000 });
    return `nbdcrypt ${args.join(' ')}`;
  }
  const args = ['luksFormat', '--batch-mode', '--type', 'luks2', '--sector-size', String(sectorSize), '--pbkdf', 'pbkdf2', '--pbkdf-force-iterations', '1000', '--key-file', keyFile, image];
  run(cryptsetup, args);
  return `cryptsetup ${args.join(' ')}`;
}
