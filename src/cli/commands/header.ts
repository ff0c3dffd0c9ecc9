/**
 * `nbdcrypt header backup|restore TARGET FILE`: save the LUKS2 or LUKS1 header and keyslot
 * areas to a file (as cryptsetup luksHeaderBackup, so the two tools read each other's
 * backups) and put them back. A backup is validated completely before restore writes anything.
 * Spec: cryptsetup(8) luksHeaderBackup / luksHeaderRestore.
 */
import { parseCommandArgs } from '../args.js';
import { exitStatusHelp } from '../exit-status.js';
import { open, readFile } from 'node:fs/promises';
import type { BlockDevice } from '../../block/block-device.js';
import { NbdcryptError } from '../../errors.js';
import { log } from '../../log.js';
import { backupHeader, restoreHeader } from '../../luks/header-backup.js';
import { openTarget } from '../../backend/open-target.js';
import type { Environment } from '../environment.js';
import { targetArgOptions, targetOptionsFromArgs } from '../target-options.js';

export const help = `Usage: nbdcrypt header backup|restore TARGET FILE [--force]

TARGET is a file, a block device or a remote export (ssh://, nbd://); see 'nbdcrypt serve
--help' for the URI forms and the remote options (--accept-new-host-key, --known-hosts,
--identity, --connections, --io-timeout, ...), which this command accepts too.

  backup    write TARGET's LUKS2 or LUKS1 header and keyslot areas (16 MiB with LUKS2's
            default layout, about 1-2 MiB for LUKS1)
            to FILE, which must not exist unless --force (created mode 0600). Compatible with
            'cryptsetup luksHeaderBackup'. Keep it safe: with it, old passphrases stay
            valid even after they are removed from the volume.
  restore   check FILE completely (checksums, metadata), then write it over TARGET's
            header and keyslot areas. Nothing is written if FILE is not a valid backup.
            Refuses a TARGET holding a different volume (other UUID) unless --force.
            Also reads backups made by 'cryptsetup luksHeaderBackup'.

Options:
  --force      backup: overwrite FILE if it exists; restore: restore over a different
               LUKS volume (its keyslots are lost)
  -h, --help   show this help

${exitStatusHelp('done', [1, 2, 4, 5, 6, 7, 10, 11])}
Examples:
  nbdcrypt header backup disk.img disk.hdr
  nbdcrypt header restore disk.img disk.hdr
`;

export async function run(argv: string[], env: Environment): Promise<number> {
  const parsed = parseCommandArgs('header', argv, { ...targetArgOptions, force: { type: 'boolean' } });
  const [action, target, file, ...extra] = parsed.positionals;
  if (action !== 'backup' && action !== 'restore') throw new NbdcryptError('EUSAGE', 'header needs an action: backup or restore; see nbdcrypt header --help');
  if (target === undefined || file === undefined || extra.length > 0) throw new NbdcryptError('EUSAGE', `header ${action} needs TARGET and FILE; see nbdcrypt header --help`);
  let dev: BlockDevice | undefined;
  try {
    if (action === 'backup') {
      dev = await openTarget(target, targetOptionsFromArgs(parsed.values, env, true));
      const data = await backupHeader(dev);
      let fh;
      try {
        // --force replaces FILE; mode 0600 applies to a file created here.
        fh = await open(file, parsed.values.force ? 'w' : 'wx', 0o600);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        throw new NbdcryptError(code === 'EEXIST' ? 'EEXIST' : 'EUSAGE', `cannot create backup file ${file} (${code ?? String(e)})${code === 'EEXIST' ? '; it already exists, choose another name or add --force to overwrite it' : ''}`);
      }
      try {
        await fh.writeFile(data);
        await fh.sync();
      } finally {
        await fh.close();
      }
      log.info(`header of ${target} (${data.length} bytes) saved to ${file}`);
      return 0;
    }
    let backup: Buffer;
    try {
      backup = await readFile(file);
    } catch (e) {
      throw new NbdcryptError('EUSAGE', `cannot read backup file ${file} (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
    }
    dev = await openTarget(target, targetOptionsFromArgs(parsed.values, env));
    await restoreHeader(dev, backup, { force: parsed.values.force ?? false });
    log.info(`header of ${target} restored from ${file}`);
    return 0;
  } finally {
    await dev?.close();
  }
}
