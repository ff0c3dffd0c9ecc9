/**
 * `nbdcrypt dump TARGET`: the LUKS2 or LUKS1 header as `cryptsetup luksDump` prints it, field for
 * field; `--dump-json-metadata` prints the JSON area; `--dump-volume-key` unlocks a keyslot
 * and prints the volume key on a line starting `MK dump:` exactly as cryptsetup 2.6 does.
 * Opens TARGET read-only. Spec: cryptsetup(8) luksDump.
 */
import { parseCommandArgs } from '../args.js';
import { exitStatusHelp } from '../exit-status.js';
import type { BlockDevice } from '../../block/block-device.js';
import { NbdcryptError } from '../../errors.js';
import { log } from '../../log.js';
import { dumpHeader, dumpJsonMetadata } from '../../luks/dump-header.js';
import { openTarget } from '../../backend/open-target.js';
import type { Environment } from '../environment.js';
import { targetArgOptions, targetOptionsFromArgs } from '../target-options.js';
import { getPassphrase } from '../passphrase.js';
import { intArg } from './format.js';

export const help = `Usage: nbdcrypt dump TARGET [OPTIONS]

Print the LUKS header of TARGET as 'cryptsetup luksDump' does (same fields, same layout).
LUKS2: version, epoch (seqid), areas, UUID, label, flags, data segments, keyslots, tokens,
digests. LUKS1: cipher, hash, payload offset, key digest, UUID and the 8 keyslots.
TARGET is opened read-only.
TARGET is a file, a block device or a remote export (ssh://, nbd://); see 'nbdcrypt serve
--help' for the URI forms and the remote options (--accept-new-host-key, --known-hosts,
--identity, --connections, --io-timeout, ...), which this command accepts too.

Options:
  --dump-volume-key      unlock a keyslot and print the volume key ('MK dump:' lines, as
                         cryptsetup). SENSITIVE: anyone with this key can read the data
                         without any passphrase, and it cannot be changed.
  --dump-json-metadata   print the JSON metadata area as stored (one line; LUKS2 only)
  --key-file FILE        passphrase for --dump-volume-key; the whole file is the key,
                         '-' means standard input (default: prompt without echo)
  --key-slot N           try only keyslot N
  --allow-costly-kdf     unlock even if the keyslot asks for a key derivation cost far
                         above what cryptsetup writes (see 'nbdcrypt serve --help')
  -h, --help             show this help

${exitStatusHelp('done (a damaged header copy is reported as a warning)', [1, 2, 3, 4, 6, 7, 10])}
Examples:
  nbdcrypt dump disk.img
  nbdcrypt dump disk.img --dump-volume-key --key-file key.bin
`;

export async function run(argv: string[], env: Environment): Promise<number> {
  const parsed = parseCommandArgs('dump', argv, {
    ...targetArgOptions,
    'dump-volume-key': { type: 'boolean' },
    'dump-json-metadata': { type: 'boolean' },
    'key-file': { type: 'string' },
    'key-slot': { type: 'string' },
    'allow-costly-kdf': { type: 'boolean' },
  });
  const v = parsed.values;
  if (parsed.positionals.length !== 1) throw new NbdcryptError('EUSAGE', 'dump needs exactly one TARGET; see nbdcrypt dump --help');
  const target = parsed.positionals[0]!;
  const keySlot = intArg(v['key-slot'], 'key-slot');
  // The name cryptsetup prints in 'LUKS header information for NAME'.
  const deviceName = target.startsWith('file:') ? target.slice(5) : target;
  let dev: BlockDevice | undefined;
  let passphrase: Buffer | undefined;
  try {
    dev = await openTarget(target, targetOptionsFromArgs(v, env, true));
    if (v['dump-json-metadata']) {
      process.stdout.write(await dumpJsonMetadata(dev));
      return 0;
    }
    if (v['dump-volume-key']) {
      passphrase = await getPassphrase({ keyFile: v['key-file'], prompt: `Enter passphrase for ${target}: ` });
      const text = await dumpHeader(dev, { engines: env.engines, passphrase, keySlot, allowCostlyKdf: v['allow-costly-kdf'] ?? false, deviceName });
      log.warn('the volume key printed below gives access to all data without a passphrase; keep it secret');
      process.stdout.write(text);
      return 0;
    }
    process.stdout.write(await dumpHeader(dev, { deviceName }));
    return 0;
  } finally {
    passphrase?.fill(0);
    await dev?.close();
  }
}
