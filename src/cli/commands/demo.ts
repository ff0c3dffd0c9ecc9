/**
 * `nbdcrypt demo` (what `npm start` runs): the whole product on one machine with no remote.
 * Creates, or reuses, a sparse LUKS2 image and a random key file in a private demo directory,
 * serves the image exactly as `nbdcrypt serve` would, and prints how to attach and mount it:
 * with the kernel's nbd-client where the nbd module is available, else with
 * nbdfuse + losetup + mount. The keyslot uses real argon2id at a deliberately small cost,
 * because the key file is 256 random bits: its strength does not come from the KDF.
 * User-facing description: README.md, "Try it: the demo".
 */
import { parseCommandArgs } from '../args.js';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { FileDevice } from '../../block/file-device.js';
import { NbdcryptError } from '../../errors.js';
import { log } from '../../log.js';
import { formatVolume } from '../../luks/format-volume.js';
import { nbdModuleAvailable } from '../../attach/nbd-client-attach.js';
import { readKeyFile } from '../passphrase.js';
import { parseSize } from '../../size.js';
import { findExecutable, type Environment } from '../environment.js';
import { serve } from '../serve-lifecycle.js';
import { parseServeArgs } from '../serve-options.js';
import { createServeRuntime } from '../serve-runtime.js';
import { exitStatusHelp } from '../exit-status.js';

export const help = `Usage: nbdcrypt demo [--dir DIR] [--size SIZE] [--cache SIZE] [--stats-interval S]

Try nbdcrypt on one machine, no remote needed (this is what 'npm start' runs).

The first run creates in DIR (default ./nbdcrypt-demo, made mode 0700):
  demo.key   32 random bytes, mode 0600: the key file that unlocks the volume
  demo.img   a sparse file of SIZE (default 1G) holding a LUKS2 volume
             (aes-xts-plain64, 4096-byte sectors, one argon2id keyslot with 64 MiB of
             memory and 4 passes, so it opens in well under a second: fine for a random
             key file, too cheap for a passphrase you type; 'nbdcrypt format' benchmarks
             the cost to 2 s like cryptsetup)
Later runs reuse both (--size is then ignored). Then it serves the volume like
'nbdcrypt serve DIR/demo.img --key-file DIR/demo.key --listen unix:DIR/nbd.sock' and
prints how to attach and mount it: with nbd-client when the nbd kernel module is present,
otherwise with nbdfuse + losetup + mount. Stop it with Ctrl-C (SIGINT) or SIGTERM.

The image is a standard LUKS2 volume: 'cryptsetup luksDump DIR/demo.img' reads it and
'cryptsetup open --key-file DIR/demo.key DIR/demo.img demo' opens it with dm-crypt.
Remove DIR to start over.

Options:
  --dir DIR             demo directory (default ./nbdcrypt-demo)
  --size SIZE           size of a new image (default 1G)
  --cache SIZE          plaintext cache as for serve (default 64M, 0 off)
  --stats-interval S    print a stats line every S seconds (see 'nbdcrypt serve --help')
  -h, --help            show this help

${exitStatusHelp('after SIGINT/SIGTERM', [1, 2, 3, 4, 8])}`;

/** argon2id cost of the demo keyslot: real argon2id, cheap because the key is random. */
const DEMO_KDF = { pbkdf: 'argon2id' as const, pbkdfMemoryKiB: 65536, pbkdfForceIterations: 4, pbkdfParallel: 1 };

async function prepare(dir: string, size: number, env: Environment): Promise<{ image: string; keyFile: string }> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const image = join(dir, 'demo.img');
  const keyFile = join(dir, 'demo.key');
  if (existsSync(image)) {
    if (!existsSync(keyFile)) throw new NbdcryptError('ENOKEY', `${image} exists but its key file ${keyFile} is gone; remove ${dir} to start a new demo`);
    log.info(`reusing ${image} (${statSync(image).size} bytes) and ${keyFile}`);
    return { image, keyFile };
  }
  writeFileSync(keyFile, randomBytes(32), { mode: 0o600, flag: 'wx' });
  const key = await readKeyFile(keyFile);
  const dev = await FileDevice.open(image, { createSize: size, fastPaths: env.fileFastPaths });
  try {
    const vol = await formatVolume(dev, key, { ...DEMO_KDF, label: 'nbdcrypt-demo', engines: env.engines });
    vol.volumeKey.fill(0);
    await dev.flush();
    log.info(`created ${image}: sparse ${size} bytes, LUKS2 ${vol.uuid}, argon2id keyslot 0 unlocked by ${keyFile}`);
  } finally {
    key.fill(0);
    await dev.close();
  }
  return { image, keyFile };
}

function howTo(dir: string, sock: string, uri: string): string {
  const header = `
Demo volume served. In another terminal, as root:
`;
  const fs = `  mkfs.xfs -f DEV            # first time only (wipes the demo volume)
  mkdir -p /mnt/demo && mount DEV /mnt/demo
  cp -r /usr/share/doc /mnt/demo/ && ls /mnt/demo
  umount /mnt/demo`;
  if (nbdModuleAvailable(findExecutable)) {
    return `${header}
  nbd-client -unix ${sock} -N disk -b 4096 -t 0 /dev/nbd0
${fs.replaceAll('DEV', '/dev/nbd0')}
  nbd-client -d /dev/nbd0

Then stop the demo with Ctrl-C here. ('nbdcrypt serve ... --attach /dev/nbd0' does the
nbd-client steps for you.)
`;
  }
  return `
The nbd kernel module is not available on this machine (/sys/module/nbd is absent and
'modprobe nbd' failed), so attach through FUSE instead (packages libnbd-bin and fuse3).
In another terminal, as root:

  mkdir -p ${dir}/fuse
  nbdfuse ${dir}/fuse/disk '${uri}' &      # the volume as a plain file
  until [ -e ${dir}/fuse/disk ]; do sleep 0.1; done
  LOOP=$(losetup -f --show ${dir}/fuse/disk)
${fs.replaceAll('DEV', '$LOOP')}
  losetup -d $LOOP && fusermount3 -u ${dir}/fuse

Then stop the demo with Ctrl-C here.
`;
}

export async function run(argv: string[], env: Environment): Promise<number> {
  // First: the thread-pool size must be asked for before any file work (serve-runtime.ts).
  const runtime = createServeRuntime(env);
  const parsed = parseCommandArgs('demo', argv, {
    dir: { type: 'string' },
    size: { type: 'string', default: '1G' },
    cache: { type: 'string', default: '64M' },
    'stats-interval': { type: 'string', default: '0' },
  });
  if (parsed.positionals.length > 0) throw new NbdcryptError('EUSAGE', `demo takes no TARGET (got '${parsed.positionals[0]}'); see 'nbdcrypt demo --help'`);
  const v = parsed.values;
  const dir = resolve(v.dir ?? 'nbdcrypt-demo');
  const size = parseSize(v.size ?? '1G', '--size');
  if (size < 32 * 2 ** 20) throw new NbdcryptError('EUSAGE', `demo: --size ${v.size} is too small; the LUKS2 header alone takes 16 MiB (try 1G)`);
  const { image, keyFile } = await prepare(dir, size, env);
  const sock = join(dir, 'nbd.sock');
  const o = parseServeArgs([image, '--key-file', keyFile, '--listen', `unix:${sock}`, '--cache', v.cache ?? '64M', '--stats-interval', v['stats-interval'] ?? '0'], env);
  return serve(o, runtime, {
    afterListen: () => process.stdout.write(howTo(dir, sock, `nbd+unix:///disk?socket=${sock}`)),
  });
}
