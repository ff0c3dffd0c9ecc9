/**
 * The guest scripts of the VM test, one per boot, written as busybox sh over the helpers of
 * guest-lib.sh (`step NAME CMD` reports one VMTEST line and stops the script on failure).
 * Boot 1 writes: filesystems through nbdcrypt, with a link cut in the middle, and LUKS2
 * volumes that cryptsetup formats on raw exports. Boot 2 checks: the images nbdcrypt wrote
 * opened by dm-crypt, and the cryptsetup volumes read back through nbdcrypt.
 * Kernel side: docs/formats.md (NBD peers, LUKS2 data segment).
 */

/** A block device the guest attaches: /dev/nbdN through the port NAME (export NAME). */
export interface GuestDisk {
  dev: string;
  port: string;
}

/** Where cryptsetup in the guest finds the passphrase (shipped in the run's initramfs). */
export const guestKeyFile = '/test/key';
/** Host-provided checksum lists live here in the guest, one file per mount point tag. */
export const guestSumsDir = '/test/sums';

const head = `set -u\n. /test/guest-lib.sh\nmkdir -p /mnt\n`;

/** A filesystem written through nbdcrypt: mkfs, mount, files, fsync, detach, re-attach, verify.
 * With `cut`, a mark in the middle of the writes tells the host to cut nbdcrypt's remote link. */
export function writeThroughNbdcrypt(d: GuestDisk, fs: 'xfs' | 'ext4', tag: string, cut: boolean): string {
  const mnt = `/mnt/${tag}`;
  const mkfs = fs === 'xfs' ? `mkfs.xfs -f -q ${d.dev}` : `mkfs.ext4 -q -F ${d.dev}`;
  const sums = `/tmp/sums_mnt_${tag}`;
  const during = cut
    ? `mark cut-${tag}
step write-during-cut-${tag} write_files ${mnt} 8 2048 cut
mark writes-done-${tag}`
    : `step write-more-${tag} write_files ${mnt} 4 1024 more`;
  return `
mkdir -p ${mnt}
step attach-${tag} attach ${d.dev} ${d.port} ${d.port}
step mkfs.${fs}-${tag} ${mkfs}
step mount-${tag} mount ${d.dev} ${mnt}
step write-${tag} write_files ${mnt} 2 1024
${during}
step fsync-${tag} sync -f ${mnt}/f0
step sums-${tag} print_sums ${mnt}
step readback-${tag} verify_files ${mnt} ${sums}
step umount-${tag} umount ${mnt}
step detach-${tag} detach ${d.dev}
step reattach-${tag} attach ${d.dev} ${d.port} ${d.port}
step remount-${tag} mount ${d.dev} ${mnt}
step readback-after-reattach-${tag} verify_files ${mnt} ${sums}
step extent-${tag} print_extent ${mnt} f0
step umount2-${tag} umount ${mnt}
step detach2-${tag} detach ${d.dev}
`;
}

/** The reverse direction: cryptsetup formats a raw export, a filesystem is filled through
 * dm-crypt, and the host later serves the same image with nbdcrypt. `format` replaces the
 * default luksFormat options (LUKS2, aes-xts-plain64, 1000 pbkdf2 iterations). */
export function cryptsetupFormat(d: GuestDisk, tag: string, sectorSize: 512 | 4096, format?: string): string {
  const mnt = `/mnt/${tag}`;
  return `
mkdir -p ${mnt}
step attach-${tag} attach ${d.dev} ${d.port} ${d.port}
step luksFormat-${tag} cryptsetup luksFormat --batch-mode ${format ?? `--type luks2 --sector-size ${sectorSize} --pbkdf pbkdf2 --pbkdf-force-iterations 1000`} --key-file ${guestKeyFile} ${d.dev}
step open-${tag} cryptsetup open --key-file ${guestKeyFile} ${d.dev} ${tag}
step table-${tag} sh -c "dmsetup table ${tag} | sed 's/:64:logon:[^ ]*/:64:logon:KEY/; s/^/VMTEST info dm-table ${tag} /'"
step mkfs.ext4-${tag} mkfs.ext4 -q /dev/mapper/${tag}
step mount-${tag} mount /dev/mapper/${tag} ${mnt}
step write-${tag} write_files ${mnt} 4 1024
step sums-${tag} print_sums ${mnt}
step readback-${tag} verify_files ${mnt} /tmp/sums_mnt_${tag}
step extent-${tag} print_extent ${mnt} f0
step umount-${tag} umount ${mnt}
step close-${tag} cryptsetup close ${tag}
step detach-${tag} detach ${d.dev}
`;
}

/** The format proof: dm-crypt opens the raw image nbdcrypt wrote; fsck and checksums. */
export function dmCryptCheck(d: GuestDisk, fs: 'xfs' | 'ext4', tag: string): string {
  const mnt = `/mnt/${tag}`;
  const fsck = fs === 'xfs' ? `xfs_repair -n /dev/mapper/${tag}` : `e2fsck -fn /dev/mapper/${tag}`;
  return `
mkdir -p ${mnt}
step attach-raw-${tag} attach ${d.dev} ${d.port} ${d.port}
step luksDump-${tag} sh -c "cryptsetup luksDump ${d.dev} | grep -E 'sector|cipher|PBKDF|offset' | sed 's/^[[:space:]]*/VMTEST info luks ${tag} /'"
step dm-crypt-open-${tag} cryptsetup open --readonly --key-file ${guestKeyFile} ${d.dev} ${tag}
step table-${tag} sh -c "dmsetup table ${tag} | sed 's/:64:logon:[^ ]*/:64:logon:KEY/; s/^/VMTEST info dm-table ${tag} /'"
step fsck-${fs}-${tag} ${fsck}
step mount-dm-${tag} mount -o ro /dev/mapper/${tag} ${mnt}
step checksums-dm-crypt-${tag} verify_files ${mnt} ${guestSumsDir}/${tag}
step umount-dm-${tag} umount ${mnt}
step close-${tag} cryptsetup close ${tag}
step detach-raw-${tag} detach ${d.dev}
`;
}

/** The reverse check: the cryptsetup volume, attached through nbdcrypt (which decrypts). */
export function readThroughNbdcrypt(d: GuestDisk, tag: string): string {
  const mnt = `/mnt/${tag}`;
  return `
mkdir -p ${mnt}
step attach-nbdcrypt-${tag} attach ${d.dev} ${d.port} ${d.port}
step fsck-ext4-${tag} e2fsck -fn ${d.dev}
step mount-nbdcrypt-${tag} mount -o ro ${d.dev} ${mnt}
step checksums-nbdcrypt-${tag} verify_files ${mnt} ${guestSumsDir}/${tag}
step umount-nbdcrypt-${tag} umount ${mnt}
step detach-nbdcrypt-${tag} detach ${d.dev}
`;
}

export function guestScript(parts: string[]): string {
  return `${head}${parts.join('')}\nstep no-io-errors no_io_errors\n`;
}

/** sha256sum -c input for one tag, from the VMTEST sum lines of an earlier boot. */
export function sumsFile(sums: Map<string, string>, tag: string): string {
  const lines: string[] = [];
  for (const [key, sum] of sums) {
    const [dir, file] = key.split(' ');
    if (dir === `/mnt/${tag}`) lines.push(`${sum}  ${file}`);
  }
  return lines.join('\n') + '\n';
}
