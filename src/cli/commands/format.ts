/**
 * `nbdcrypt format TARGET`: create a LUKS2 volume that cryptsetup opens (same layout as
 * `cryptsetup luksFormat --type luks2`: aes-xts-plain64 with a 512-bit key or the --cipher and
 * --key-size given, one argon2id keyslot benchmarked to --iter-time), or with --type luks1 a
 * LUKS1 volume with the cipher, key size and hash given. Also exports the KDF option table shared with `key`.
 * Spec: docs/formats.md (LUKS2); cryptsetup(8) luksFormat.
 */
import { parseCommandArgs } from '../args.js';
import { exitStatusHelp } from '../exit-status.js';
import { stat } from 'node:fs/promises';
import type { BlockDevice } from '../../block/block-device.js';
import { FileDevice } from '../../block/file-device.js';
import { NbdcryptError } from '../../errors.js';
import { log } from '../../log.js';
import { formatVolume, refuseNonEmpty } from '../../luks/format-volume.js';
import { formatLuks1Volume } from '../../luks/luks1-format.js';
import type { NewKeyOptions } from '../../luks/key-operations.js';
import { openTarget, type TargetOptions } from '../../backend/open-target.js';
import type { Environment } from '../environment.js';
import { targetArgOptions, targetOptionsFromArgs } from '../target-options.js';
import { getPassphrase } from '../passphrase.js';
import { parseSize } from '../../size.js';

export const help = `Usage: nbdcrypt format TARGET [OPTIONS]

Create a LUKS2 volume on TARGET, byte-compatible with 'cryptsetup luksFormat --type luks2':
aes-xts-plain64 with a random 512-bit volume key (or --cipher, --key-size), data at 16 MiB,
one argon2id keyslot (0). The volume opens with cryptsetup/dm-crypt on any Linux machine.
ALL DATA ON TARGET IS LOST. With --type luks1: a LUKS1 volume as 'cryptsetup luksFormat
--type luks1' makes it (for systems that need LUKS1), with --hash too; pbkdf2 keyslots.

TARGET:
  file:PATH | PATH   a regular file or a block device
  memory:SIZE        an in-RAM disk (for trying things out)
  sftp://[USER@]HOST[:PORT]/PATH
                     a file on an SFTP server (created sparse with --size)
  ssh://[USER@]HOST[:PORT]/EXPORT, nbd://HOST/EXPORT, ...
                     a remote nbd-server export; URI forms and the remote options
                     (--accept-new-host-key, --known-hosts, --identity, --connections,
                     --io-timeout, ...) as in 'nbdcrypt serve --help'

Options:
  --key-file FILE        read the passphrase from FILE; the whole file is the key (no
                         newline stripping), '-' means standard input. Without it the
                         passphrase is asked twice on the terminal without echo.
  --type luks2|luks1     on-disk format (default luks2)
  --cipher SPEC          data cipher, also used for the keyslot areas:
                         aes|twofish|serpent - xts-plain64|cbc-essiv:sha256|cbc-plain64|
                         cbc-plain|ecb (default aes-xts-plain64)
  --key-size BITS        volume key size (luks2 default: 512 for xts, 256 otherwise; luks1
                         default 256); xts takes 256 or 512 (twofish, serpent: 384 too), cbc
                         and ecb 128, 192 or 256 (aes-xts: 256 or 512)
  --hash HASH            luks1 PBKDF2 and AF hash: sha1, sha256, sha512, ripemd160, ...
                         (default sha256)
  --offset SECTORS       luks1 payload offset in 512-byte sectors, a multiple of 8 (default:
                         after the keyslots, aligned to 1 MiB)
  --sector-size 512|4096 encryption sector size (default 4096; luks1: 512 only)
  --label TEXT           volume label (at most 47 bytes; luks2 only)
  --uuid UUID            volume UUID (default: random)
  --pbkdf argon2id|pbkdf2  keyslot KDF (default argon2id)
  --iter-time MS         benchmark the KDF so one unlock takes about MS ms (default 2000)
  --pbkdf-memory KIB     argon2id memory in KiB (default: benchmarked, up to 1048576 and
                         never more than half of the free RAM)
  --pbkdf-parallel N     argon2id threads, 1..4 (default: min(4, CPUs))
  --pbkdf-force-iterations N  skip the benchmark: argon2id time cost (>= 4) or pbkdf2
                         iterations (>= 1000)
  --size SIZE            create TARGET (a file or sftp://) as a sparse file of SIZE (e.g.
                         1G) if it does not exist
  --force                format even if TARGET holds a LUKS header or other data
  -h, --help             show this help

${exitStatusHelp('done', [1, 2, 5, 6, 7, 10, 11])}
Examples:
  nbdcrypt format disk.img --size 10G --label backup
  gpg -d key.asc | nbdcrypt format --key-file - /dev/sdb1
  nbdcrypt format disk.img --pbkdf-memory 65536 --iter-time 1000
  nbdcrypt format disk.img --cipher serpent-xts-plain64 --key-size 256
  nbdcrypt format disk.img --type luks1 --cipher twofish-cbc-essiv:sha256 --hash sha256
`;

/** parseArgs options for a new keyslot's KDF (format, key add, key change). */
export const kdfArgOptions = {
  pbkdf: { type: 'string' },
  'iter-time': { type: 'string' },
  'pbkdf-memory': { type: 'string' },
  'pbkdf-parallel': { type: 'string' },
  'pbkdf-force-iterations': { type: 'string' },
} as const;

export function intArg(v: string | undefined, name: string, min = 0): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < min || !Number.isSafeInteger(Number(v))) throw new NbdcryptError('EUSAGE', `--${name} '${v}' must be a whole number >= ${min}`);
  return Number(v);
}

export function kdfFromArgs(v: Record<string, string | boolean | undefined>): Omit<NewKeyOptions, 'keySlot'> {
  const pbkdf = v.pbkdf as string | undefined;
  if (pbkdf !== undefined && pbkdf !== 'argon2id' && pbkdf !== 'pbkdf2') throw new NbdcryptError('EUSAGE', `--pbkdf '${pbkdf}' is not supported; use argon2id or pbkdf2`);
  return {
    pbkdf,
    iterTimeMs: intArg(v['iter-time'] as string | undefined, 'iter-time', 1),
    pbkdfMemoryKiB: intArg(v['pbkdf-memory'] as string | undefined, 'pbkdf-memory', 1),
    pbkdfParallel: intArg(v['pbkdf-parallel'] as string | undefined, 'pbkdf-parallel', 1),
    pbkdfForceIterations: intArg(v['pbkdf-force-iterations'] as string | undefined, 'pbkdf-force-iterations', 1),
  };
}

/** Options that only one of the formats takes. */
function checkTypeOptions(type: 'luks1' | 'luks2', v: Record<string, string | boolean | undefined>, sectorSize: number): void {
  const usage = (msg: string) => new NbdcryptError('EUSAGE', msg);
  if (type === 'luks1') {
    if (sectorSize !== 512) throw usage('LUKS1 encrypts 512-byte sectors only; drop --sector-size or use --type luks2');
    if (v.label !== undefined) throw usage('LUKS1 has no label; drop --label or use --type luks2');
    return;
  }
  for (const o of ['hash', 'offset']) if (v[o] !== undefined) throw usage(`--${o} applies to --type luks1 only`);
}

async function openForFormat(target: string, size: number | undefined, targetOptions: TargetOptions = {}): Promise<BlockDevice> {
  if (size === undefined) return openTarget(target, targetOptions);
  if (target.startsWith('sftp://')) return openTarget(target, { ...targetOptions, createSize: size });
  const path = target.startsWith('file:') ? target.slice(5) : target;
  if (/^[a-z][a-z0-9+.-]*:/i.test(target) && !target.startsWith('file:')) throw new NbdcryptError('EUSAGE', '--size only applies to a file or sftp:// TARGET');
  const exists = await stat(path).then(
    () => true,
    () => false,
  );
  if (!exists) return FileDevice.open(path, { createSize: size, lock: true });
  const dev = await FileDevice.open(path, { lock: true });
  if (dev.size !== size) {
    await dev.close();
    throw new NbdcryptError('EUSAGE', `${path} already exists with ${dev.size} bytes, not the --size given; drop --size or remove the file`);
  }
  return dev;
}

export async function run(argv: string[], env: Environment): Promise<number> {
  const parsed = parseCommandArgs('format', argv, {
    ...kdfArgOptions,
    ...targetArgOptions,
    'key-file': { type: 'string' },
    'sector-size': { type: 'string' },
    label: { type: 'string' },
    uuid: { type: 'string' },
    size: { type: 'string' },
    force: { type: 'boolean' },
    type: { type: 'string' },
    cipher: { type: 'string' },
    'key-size': { type: 'string' },
    hash: { type: 'string' },
    offset: { type: 'string' },
  });
  const v = parsed.values;
  if (parsed.positionals.length !== 1) throw new NbdcryptError('EUSAGE', 'format needs exactly one TARGET; see nbdcrypt format --help');
  const target = parsed.positionals[0]!;
  const type = v.type ?? 'luks2';
  if (type !== 'luks2' && type !== 'luks1') throw new NbdcryptError('EUSAGE', `--type '${type}' is not supported; use luks2 or luks1`);
  const sectorSize = intArg(v['sector-size'], 'sector-size') ?? (type === 'luks1' ? 512 : 4096);
  if (sectorSize !== 512 && sectorSize !== 4096) throw new NbdcryptError('EUSAGE', `--sector-size ${sectorSize} is not supported; use 512 or 4096`);
  checkTypeOptions(type, v, sectorSize);
  const kdf = kdfFromArgs(v);
  const size = v.size === undefined ? undefined : parseSize(v.size, '--size');
  let dev: BlockDevice | undefined;
  let passphrase: Buffer | undefined;
  try {
    dev = await openForFormat(target, size, { ...targetOptionsFromArgs(v, env), resize: v.force === true });
    // Refuse a busy target before the user types a passphrase twice.
    if (!v.force) await refuseNonEmpty(dev);
    passphrase = await getPassphrase({ keyFile: v['key-file'], prompt: `Enter passphrase for ${target}: `, confirm: true });
    const vol =
      type === 'luks1'
        ? await formatLuks1Volume(dev, passphrase, { ...kdf, cipher: v.cipher, keyBits: intArg(v['key-size'], 'key-size', 1), hash: v.hash, offsetSectors: intArg(v.offset, 'offset'), uuid: v.uuid })
        : await formatVolume(dev, passphrase, { engines: env.engines, ...kdf, cipher: v.cipher, keyBits: intArg(v['key-size'], 'key-size', 1), sectorSize, label: v.label, uuid: v.uuid, force: v.force ?? false });
    vol.volumeKey.fill(0);
    await dev.flush();
    log.info(`formatted ${target}: ${vol.format} UUID ${vol.uuid}, ${vol.cipher}, ${vol.dataSize} bytes of encrypted data (sector ${vol.sectorSize}), keyslot 0`);
    return 0;
  } finally {
    passphrase?.fill(0);
    await dev?.close();
  }
}
