/**
 * `nbdcrypt convert TARGET --type luks2|luks1`: turn a LUKS1 header into LUKS2 in place or
 * back, as `cryptsetup convert` does (header and keyslot areas only, the data area is
 * never touched). A header backup is written and synced first, to --header-backup FILE or a
 * temporary file whose name is printed, so an interrupted conversion can be undone with
 * `nbdcrypt header restore`. Spec: docs/formats.md (LUKS conversion); cryptsetup(8) convert.
 */
import { mkdtemp, open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCommandArgs } from '../args.js';
import { exitStatusHelp } from '../exit-status.js';
import type { BlockDevice } from '../../block/block-device.js';
import { NbdcryptError } from '../../errors.js';
import { log } from '../../log.js';
import { backupHeader } from '../../luks/header-backup.js';
import { convertLuks1ToLuks2 } from '../../luks/luks1-to-luks2.js';
import { convertLuks2ToLuks1 } from '../../luks/luks2-to-luks1.js';
import { isLuks1Device } from '../../luks/luks1-volume.js';
import { openTarget } from '../../backend/open-target.js';
import type { Environment } from '../environment.js';
import { targetArgOptions, targetOptionsFromArgs } from '../target-options.js';

export const help = `Usage: nbdcrypt convert TARGET --type luks2|luks1 [--header-backup FILE]

Convert the LUKS header of TARGET in place, as 'cryptsetup convert' does: same volume key,
passphrases, cipher, UUID and data offset; the keyslot areas move; the data area is never
touched. To LUKS2: refused when the keyslots would not fit before the data (old layouts) or
for a detached header. To LUKS1: only for what LUKS1 can express (pbkdf2 keyslots 0-7,
512-byte sectors, no tokens, 16 KiB metadata, keyslot areas where LUKS1 keeps them, as after
a conversion from LUKS1); an argon2 keyslot (the default of nbdcrypt and cryptsetup) is
refused: add a pbkdf2 one ('nbdcrypt key add --pbkdf pbkdf2') and remove it first.
TARGET is a file, a block device or a remote export (ssh://, nbd://), as for 'serve'.

Options:
  --type luks2|luks1     the format to convert to (required)
  --header-backup FILE   save the header backup here first (must not exist); default: a new
                         temporary file, whose name is printed. Keep it until the volume
                         opens: 'nbdcrypt header restore TARGET FILE' undoes the conversion.
  -h, --help             show this help

${exitStatusHelp('done', [1, 2, 4, 5, 6, 7])}
Examples:
  nbdcrypt convert disk.img --type luks2 --header-backup disk-luks1.hdr
`;

/** Writes and syncs the backup (mode 0600, never over an existing file); returns its path. */
async function saveBackup(data: Buffer, file: string | undefined): Promise<string> {
  const path = file ?? join(await mkdtemp(join(tmpdir(), 'nbdcrypt-convert-')), 'header-backup');
  let fh;
  try {
    fh = await open(path, 'wx', 0o600);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new NbdcryptError(code === 'EEXIST' ? 'EEXIST' : 'EUSAGE', `cannot create header backup file ${path} (${code ?? String(e)}); nothing was changed`);
  }
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  return path;
}

export async function run(argv: string[], env: Environment): Promise<number> {
  const parsed = parseCommandArgs('convert', argv, { ...targetArgOptions, type: { type: 'string' }, 'header-backup': { type: 'string' } });
  const v = parsed.values;
  if (parsed.positionals.length !== 1) throw new NbdcryptError('EUSAGE', 'convert needs exactly one TARGET; see nbdcrypt convert --help');
  if (v.type !== 'luks2' && v.type !== 'luks1') throw new NbdcryptError('EUSAGE', 'convert needs --type luks2 or --type luks1; see nbdcrypt convert --help');
  const target = parsed.positionals[0]!;
  let dev: BlockDevice | undefined;
  try {
    dev = await openTarget(target, targetOptionsFromArgs(v, env));
    const from = (await isLuks1Device(dev)) ? 'luks1' : 'luks2';
    if (from === v.type) throw new NbdcryptError('EBADHDR', `${target} already holds a ${v.type.toUpperCase()} header; nothing was changed`);
    // Also validates the current header (a LUKS2 one completely) before anything is written.
    const path = await saveBackup(await backupHeader(dev), v['header-backup']);
    log.info(`header backup of ${target} saved to ${path}`);
    const uuid = v.type === 'luks2' ? await convertLuks1ToLuks2(dev) : await convertLuks2ToLuks1(dev);
    await dev.flush();
    log.info(`converted ${target} to ${v.type.toUpperCase()} (UUID ${uuid}); if it does not open, 'nbdcrypt header restore ${target} ${path}' puts the ${from.toUpperCase()} header back`);
    return 0;
  } finally {
    await dev?.close();
  }
}
