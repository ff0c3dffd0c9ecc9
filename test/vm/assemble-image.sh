#!/usr/bin/env bash
# Assembles the VM test's guest from Debian packages only: a stock Debian kernel (vmlinuz) and
# an initramfs holding busybox, nbd-client, cryptsetup, socat, e2fsprogs, xfsprogs, their
# shared-library closure and the kernel modules the test needs, with test/vm/guest-init.sh as
# /init. Packages are fetched with `apt-get download` and unpacked with `dpkg -x` into a
# scratch tree: nothing is installed into /. Libraries are resolved by the packaged
# ld-linux (`--list`), modules in dependency order by the host's kmod (`modprobe -d`).
# Recipe and pitfalls: test/vm/README.md.
#
# Usage: assemble-image.sh OUT_DIR GUEST_INIT GUEST_LIB
# Writes OUT_DIR/vmlinuz, OUT_DIR/initrd.cpio.gz, OUT_DIR/manifest.txt (atomically: built in
# OUT_DIR.tmp.PID and renamed), so a half-built image is never taken from the cache.
set -euo pipefail

out=$1
guest_init=$2
guest_lib=$3
work="$out.tmp.$$"
trap 'rm -rf "$work"' EXIT
rm -rf "$work"
mkdir -p "$work/debs" "$work/x" "$work/root"

for tool in apt-get apt-cache dpkg depmod modprobe cpio gzip; do
  command -v "$tool" >/dev/null || { echo "assemble-image: '$tool' is missing (apt-get install kmod cpio)" >&2; exit 3; }
done

# The kernel flavour that linux-image-amd64 points at today.
kpkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[ -n "$kpkg" ] || { echo "assemble-image: cannot resolve linux-image-amd64 (run apt-get update)" >&2; exit 3; }

tools="busybox-static nbd-client cryptsetup-bin dmsetup socat e2fsprogs xfsprogs"
# Library closure of the tools: every lib* package they depend on, recursively. Virtual
# packages and non-library dependencies (debconf, perl…) are not needed in the guest.
libs=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
  --no-replaces --no-enhances $tools | awk '/^lib[a-z0-9.+-]+$/ {print}' | sort -u)
pkgs="$kpkg $tools libc6 libgcc-s1 $libs"

echo "assemble-image: downloading $(echo $pkgs | wc -w) packages" >&2
(
  cd "$work/debs"
  # One call for speed; a name apt cannot download (a virtual package) makes it fail, so
  # then fall back to one call per package and ignore the names that are only virtual.
  if ! apt-get download $pkgs >/dev/null 2>"$work/apt.err"; then
    for p in $pkgs; do
      apt-get download "$p" >/dev/null 2>>"$work/apt.err" || echo "assemble-image: skipped '$p' (virtual?)" >&2
    done
  fi
)
for deb in "$work"/debs/*.deb; do dpkg -x "$deb" "$work/x"; done
ls "$work"/debs >"$work/packages.txt"

x="$work/x"
r="$work/root"
kver=${kpkg#linux-image-}

# --- kernel and modules -----------------------------------------------------------------
cp "$x/boot/vmlinuz-$kver" "$work/vmlinuz"
depmod -b "$x" "$kver"
mods="virtio_pci virtio_console nbd dm_mod dm_crypt xts ecb cbc aes_generic aesni_intel
  crc32c_generic crc32c_intel crc32_pclmul ext4 xfs algif_skcipher algif_hash af_alg
  sha256_generic sha256_ssse3 sha512_generic virtio_blk 9p 9pnet_virtio twofish_generic
  serpent_generic essiv"
mkdir -p "$r/lib/modules"
: >"$r/etc-modules.order"
for m in $mods; do
  # --show-depends prints "insmod PATH" lines in load order, "builtin NAME" for built-ins.
  modprobe -d "$x" -S "$kver" --show-depends "$m" 2>/dev/null | awk '$1=="insmod" {print $2}'
done | awk '!seen[$0]++' | while read -r ko; do
  base=$(basename "$ko")
  cp "$ko" "$r/lib/modules/$base"
  echo "$base" >>"$r/etc-modules.order"
done
[ -s "$r/etc-modules.order" ] || { echo "assemble-image: no kernel modules resolved" >&2; exit 3; }

# --- user space -------------------------------------------------------------------------
mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,lib/x86_64-linux-gnu,lib64,etc,proc,sys,dev,run,tmp,mnt,root,test}
mv "$r/etc-modules.order" "$r/etc/modules.order"
ldso="$x/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
[ -e "$ldso" ] || ldso="$x/lib64/ld-linux-x86-64.so.2"
libpath="$x/lib/x86_64-linux-gnu:$x/usr/lib/x86_64-linux-gnu"

find_bin() {
  local p
  for d in sbin usr/sbin bin usr/bin; do
    p="$x/$d/$1"
    if [ -e "$p" ]; then readlink -f "$p"; return 0; fi
  done
  echo "assemble-image: binary '$1' not found in the unpacked packages" >&2
  return 1
}

cp "$(find_bin busybox)" "$r/bin/busybox"
for b in nbd-client cryptsetup dmsetup mke2fs e2fsck filefrag mkfs.xfs xfs_repair xfs_db; do
  src=$(find_bin "$b")
  cp "$src" "$r/usr/sbin/$b"
  # The packaged loader lists what the binary needs from the unpacked tree, not from the host.
  "$ldso" --library-path "$libpath" --list "$src" | awk '$2=="=>" && $3 ~ /^\// {print $3}'
done >"$work/libs.txt"
src=$(find_bin socat)
cp "$src" "$r/usr/bin/socat"
"$ldso" --library-path "$libpath" --list "$src" | awk '$2=="=>" && $3 ~ /^\// {print $3}' >>"$work/libs.txt"
if grep -v "^$x" "$work/libs.txt" >/dev/null; then
  echo "assemble-image: a library resolved outside the unpacked tree:" >&2
  grep -v "^$x" "$work/libs.txt" >&2
  exit 3
fi
sort -u "$work/libs.txt" | while read -r lib; do cp -L "$lib" "$r/lib/x86_64-linux-gnu/"; done
# glibc loads libgcc_s at run time for pthread_cancel; --list cannot see that.
cp -L "$x/lib/x86_64-linux-gnu/libgcc_s.so.1" "$r/lib/x86_64-linux-gnu/"
cp -L "$ldso" "$r/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
ln -s ../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$r/lib64/ld-linux-x86-64.so.2"
ln -s mke2fs "$r/usr/sbin/mkfs.ext4"
ln -s e2fsck "$r/usr/sbin/fsck.ext4"

cp "$guest_init" "$r/init"
cp "$guest_lib" "$r/test/guest-lib.sh"
chmod 755 "$r/init"
echo "root:x:0:0:root:/root:/bin/sh" >"$r/etc/passwd"
echo "root:x:0:" >"$r/etc/group"
: >"$r/etc/fstab"

(cd "$r" && find . -print0 | cpio --null -o -H newc -R 0:0 --quiet | gzip -6) >"$work/initrd.cpio.gz"

{
  echo "kernel $kver"
  echo "modules $(tr '\n' ' ' <"$r/etc/modules.order")"
  echo "vmlinuz_bytes $(stat -c %s "$work/vmlinuz")"
  echo "initrd_bytes $(stat -c %s "$work/initrd.cpio.gz")"
  echo "packages"
  sed 's/^/  /' "$work/packages.txt"
} >"$work/manifest.txt"

rm -rf "$out"
mkdir -p "$out"
mv "$work/vmlinuz" "$work/initrd.cpio.gz" "$work/manifest.txt" "$out/"
echo "assemble-image: $out ready (kernel $kver)" >&2
