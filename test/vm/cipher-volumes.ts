/**
 * The cipher phase of the VM test: volumes cryptsetup formats in the guest with ciphers other
 * than aes-xts-plain64 (a Twofish LUKS1 and a Serpent LUKS2 volume, filled through the
 * guest's dm-crypt in boot 1); on the host between the boots, nbdcrypt serves each image,
 * the host mounts it read-only through nbdfuse + loop and checks the guest's files, then
 * mounts it writable and adds files of its own; boot 2's dm-crypt opens the image again and
 * checks every file (e2fsck -fn first). The host needs root for loop devices and mounts.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nbdUri } from '../../peers/nbdcrypt.js';
import { nbdfuseMount } from '../../peers/nbdfuse-mount.js';
import { run } from '../../peers/tools.js';
import { startNbdcryptServe } from './host-peers.js';

export interface CipherVolume {
  tag: string;
  /** luksFormat options in the guest (cheap KDF: TCG is slow). */
  luksFormat: string;
  /** What nbdcrypt serve must say it opened. */
  format: 'LUKS1' | 'LUKS2';
  cipher: string;
}

export const cipherVolumes: readonly CipherVolume[] = [
  { tag: 'tf1', luksFormat: '--type luks1 --cipher twofish-cbc-essiv:sha256 --hash sha256 --key-size 256 --pbkdf-force-iterations 1000', format: 'LUKS1', cipher: 'twofish-cbc-essiv:sha256' },
  { tag: 'sp2', luksFormat: '--type luks2 --cipher serpent-xts-plain64 --pbkdf argon2id --pbkdf-memory 32768 --pbkdf-force-iterations 4 --pbkdf-parallel 1', format: 'LUKS2', cipher: 'serpent-xts-plain64' },
];

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/**
 * Serves `img` with nbdcrypt, checks the files of `guestSums` (sha256sum lines, names relative
 * to the filesystem root) through a read-only mount, then writes two files through a
 * writable one. Returns the sha256sum lines of every file (the guest's and the host's).
 */
export async function hostRoundTrip(v: CipherVolume, img: string, keyFile: string, guestSums: string, workDir: string): Promise<string> {
  const socket = join(workDir, `host-${v.tag}.sock`);
  const serve = await startNbdcryptServe([img, '--key-file', keyFile], socket, 'disk');
  try {
    assert.match(serve.stderr(), new RegExp(`^nbdcrypt: ${v.format} volume [0-9a-f-]{36} unlocked with keyslot 0: \\d+ bytes, sector \\d+, ${v.cipher} \\(`, 'm'), `${v.tag}: serve names the format and cipher`);
    const uri = nbdUri(`unix:${socket}`, 'disk');
    const lines = guestSums.split('\n').filter((l) => l.length > 0);
    assert.ok(lines.length >= 4, `${v.tag}: boot 1 reported ${lines.length} files`);
    const ro = await nbdfuseMount(uri, { readOnly: true });
    try {
      for (const l of lines) {
        const [sum, name] = l.split(/\s+/);
        assert.equal(sha256(join(ro.mountpoint, name!)), sum, `${v.tag}: ${name} written by the guest's dm-crypt reads back through nbdcrypt`);
      }
    } finally {
      await ro.cleanup();
    }
    const rw = await nbdfuseMount(uri);
    try {
      for (const name of ['h0', 'h1']) {
        const data = randomBytes(384 * 1024 + 4096 * lines.length);
        writeFileSync(join(rw.mountpoint, name), data);
        lines.push(`${createHash('sha256').update(data).digest('hex')}  ${name}`);
      }
      run('sync', ['-f', join(rw.mountpoint, 'h1')]);
    } finally {
      await rw.cleanup();
    }
    return lines.join('\n') + '\n';
  } finally {
    await serve.stop(10_000);
    assert.equal(await serve.exited, 0, `${v.tag}: nbdcrypt serve exit status\n${serve.stderr()}`);
  }
}
