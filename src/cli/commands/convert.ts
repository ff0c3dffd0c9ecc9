/**
 * `nbdcrypt convert TARGET --type luks2`: turn a LUKS1 header into LUKS2 in place, as
 * `cryptsetup convert --type luks2` does (header and keyslot areas only, the data area is
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
import { isLuks1Device } from '../../luks/luks1-volume.js';
import { openTarget } from '../../backend/open-target.js';
import { targetArgOptions, targetOptionsFromArgs } from '../target-options.js';

export const help = `Usage: nbdcrypt convert TARGET --type luks2 [--header-backup FILE]

Convert the LUKS1 header of TARGET to LUKS2 in place, as 'cryptsetup convert --type luks2'
does: same volume key, passphrases (pbkdf2 keyslots), cipher, UUID and data offset; the
keyslot areas move behind the LUKS2 metadata; the data area is never touched. Refused when
the keyslots would not fit before the data (old layouts) or for a detached header.
Converting LUKS2 to LUKS1 is not supported yet (use 'cryptsetup convert --type luks1').
TARGET is a file, a block device or a remote export (ssh://, nbd://), as for 'serve'.

Options:
  --type luks2           the format to convert to (required)
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

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommandArgs('convert', argv, { ...targetArgOptions, type: { type: 'string' }, 'header-backup': { type: 'string' } });
  const v = parsed.values;
  if (parsed.positionals.length !== 1) throw new NbdcryptError('EUSAGE', 'convert needs exactly one TARGET; see nbdcrypt convert --help');
  if (v.type === 'luks1') throw new NbdcryptError('EUSAGE', "converting LUKS2 to LUKS1 is not supported yet; use 'cryptsetup convert --type luks1'");
  if (v.type !== 'luks2') throw new NbdcryptError('EUSAGE', 'convert needs --type luks2; see nbdcrypt convert --help');
  const target = parsed.positionals[0]!;
  let dev: BlockDevice | undefined;
  try {
    dev = await openTarget(target, targetOptionsFromArgs(v));
    if (!(await isLuks1Device(dev))) throw new NbdcryptError('EBADHDR', `${target} does not hold a LUKS1 header (already LUKS2, or not LUKS); nothing was changed`);
    const path = await saveBackup(await backupHeader(dev), v['header-backup']);
    log.info(`header backup of ${target} saved to ${path}`);
    const uuid = await convertLuks1ToLuks2(dev);
    await dev.flush();
    log.info(`converted ${target} to LUKS2 (UUID ${uuid}); if it does not open, 'nbdcrypt header restore ${target} ${path}' puts the LUKS1 header back`);
    return 0;
  } finally {
    await dev?.close();
  }
}
