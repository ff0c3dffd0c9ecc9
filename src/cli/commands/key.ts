/**
 * `nbdcrypt key add|remove|change TARGET`: keyslot management like cryptsetup's luksAddKey,
 * luksRemoveKey / luksKillSlot and luksChangeKey. The existing passphrase comes from
 * --key-file, the new one from --new-key-file (either may be '-' for standard input, not
 * both), otherwise from prompts without echo. Spec: cryptsetup(8).
 */
import { parseCommandArgs } from '../args.js';
import { exitStatusHelp } from '../exit-status.js';
import type { BlockDevice } from '../../block/block-device.js';
import { NbdcryptError } from '../../errors.js';
import { log } from '../../log.js';
import { addKey, changeKey, removeKey } from '../../luks/key-operations.js';
import { openTarget } from '../../backend/open-target.js';
import type { Environment } from '../environment.js';
import { targetArgOptions, targetOptionsFromArgs } from '../target-options.js';
import { getPassphrase } from '../passphrase.js';
import { intArg, kdfArgOptions, kdfFromArgs } from './format.js';

export const help = `Usage: nbdcrypt key add|remove|change TARGET [OPTIONS]

Manage the passphrases (keyslots: at most 32 in LUKS2, 8 in LUKS1) of the LUKS volume on
TARGET. Every change needs an existing passphrase. The volume key and the data are never touched.
TARGET is a file, a block device or a remote export (ssh://, nbd://); see 'nbdcrypt serve
--help' for the URI forms and the remote options (--accept-new-host-key, --known-hosts,
--identity, --connections, --io-timeout, ...), which this command accepts too.

  add       add a keyslot for a new passphrase (like cryptsetup luksAddKey)
  remove    remove the keyslot the given passphrase opens (luksRemoveKey), or with
            --key-slot N remove slot N, authorised by any passphrase (luksKillSlot)
  change    replace the passphrase of the keyslot it opens, keeping the slot number
            (luksChangeKey); on LUKS1, as cryptsetup, the new passphrase goes to the
            first free slot and the old slot is removed, unless --key-slot is given

Options:
  --key-file FILE        the existing passphrase; the whole file is the key, '-' = stdin
  --new-key-file FILE    the new passphrase (add, change); '-' = stdin
  --key-slot N           add: use slot N; remove: remove slot N; change: the slot to change
  --force                remove: allow removing the last keyslot (the data is then lost)
  --allow-costly-kdf     accept an existing keyslot whose key derivation cost is far above
                         what cryptsetup writes (see 'nbdcrypt serve --help')
  --pbkdf, --iter-time, --pbkdf-memory, --pbkdf-parallel, --pbkdf-force-iterations
                         KDF of the new keyslot, as for 'nbdcrypt format'
                         (LUKS1: pbkdf2 with the header's hash only)
  -h, --help             show this help

Without --key-file/--new-key-file the passphrases are asked on the terminal without echo
(the new one twice).

${exitStatusHelp('done', [1, 2, 3, 4, 5, 6, 7, 10, 11])}
Examples:
  nbdcrypt key add disk.img --key-file old.key --new-key-file new.key
  nbdcrypt key remove disk.img --key-slot 1 --key-file old.key
  nbdcrypt key change disk.img
`;

export async function run(argv: string[], env: Environment): Promise<number> {
  const parsed = parseCommandArgs('key', argv, {
    ...kdfArgOptions,
    'key-file': { type: 'string' },
    ...targetArgOptions,
    'new-key-file': { type: 'string' },
    'key-slot': { type: 'string' },
    force: { type: 'boolean' },
    'allow-costly-kdf': { type: 'boolean' },
  });
  const v = parsed.values;
  const [action, target, ...extra] = parsed.positionals;
  if (action !== 'add' && action !== 'remove' && action !== 'change') throw new NbdcryptError('EUSAGE', "key needs an action: add, remove or change; see nbdcrypt key --help");
  if (target === undefined || extra.length > 0) throw new NbdcryptError('EUSAGE', `key ${action} needs exactly one TARGET; see nbdcrypt key --help`);
  if (v['key-file'] === '-' && v['new-key-file'] === '-') throw new NbdcryptError('EUSAGE', "--key-file and --new-key-file cannot both be '-' (standard input)");
  if (action === 'remove' && v['new-key-file'] !== undefined) throw new NbdcryptError('EUSAGE', '--new-key-file makes no sense with key remove');
  const keySlot = intArg(v['key-slot'], 'key-slot');
  const kdf = kdfFromArgs(v);
  const auth = { allowCostlyKdf: v['allow-costly-kdf'] ?? false };
  const secrets: Buffer[] = [];
  let dev: BlockDevice | undefined;
  try {
    dev = await openTarget(target, targetOptionsFromArgs(v, env));
    const existingPrompt = action === 'remove' && keySlot === undefined ? 'Enter passphrase to be deleted: ' : action === 'change' ? 'Enter passphrase to be changed: ' : 'Enter any existing passphrase: ';
    const existing = await getPassphrase({ keyFile: v['key-file'], prompt: existingPrompt });
    secrets.push(existing);
    if (action === 'remove') {
      const slot = await removeKey(dev, existing, { engines: env.engines, keySlot, force: v.force ?? false }, auth);
      log.info(`keyslot ${slot} removed from ${target}`);
      return 0;
    }
    const fresh = await getPassphrase({ keyFile: v['new-key-file'], prompt: 'Enter new passphrase: ', confirm: true });
    secrets.push(fresh);
    if (action === 'add') {
      const slot = await addKey(dev, existing, fresh, { engines: env.engines, ...kdf, keySlot }, auth);
      log.info(`keyslot ${slot} added to ${target}`);
    } else {
      const slot = await changeKey(dev, existing, fresh, { engines: env.engines, ...kdf, keySlot }, auth);
      log.info(`passphrase of ${target} changed, now in keyslot ${slot}`);
    }
    return 0;
  } finally {
    for (const s of secrets) s.fill(0);
    await dev?.close();
  }
}
