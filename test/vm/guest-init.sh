#!/bin/busybox sh
# /init of the VM test's guest (busybox sh, no udev, no network). Mounts the pseudo
# filesystems, loads the kernel modules in the dependency order assemble-image.sh resolved,
# bridges every named virtio-serial port to a unix socket /run/NAME.sock (nbd-client only
# speaks sockets; the host end of each port is an NBD server's socket), runs the test script
# that the host appended to the initramfs as /test/run.sh, then powers off. Everything
# the host reads is a line on the serial console starting with "VMTEST ".
# Recipe: test/vm/README.md.
/bin/busybox mkdir -p /proc /sys /dev /run /tmp /usr/bin /usr/sbin /bin /sbin
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
/bin/busybox mount -t tmpfs tmpfs /run
/bin/busybox mount -t tmpfs tmpfs /tmp
# Links for applets that the real tools (in /usr/sbin, first on PATH) don't replace.
/bin/busybox --install -s /bin 2>/dev/null
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root
exec </dev/console >/dev/console 2>&1

echo "VMTEST boot uptime=$(cut -d' ' -f1 /proc/uptime) kernel=$(uname -r)"
failed=""
while read -r ko; do
  # A module already built in, or not needed by this CPU model (aesni under TCG), fails
  # harmlessly; the steps that need it report the real error.
  insmod "/lib/modules/$ko" 2>/dev/null || failed="$failed ${ko%.ko}"
done </etc/modules.order
echo "VMTEST modules loaded=$(wc -l </etc/modules.order) failed=${failed:-none}"

ports=""
for n in /sys/class/virtio-ports/*/name; do
  [ -e "$n" ] || continue
  name=$(cat "$n")
  [ -n "$name" ] || continue
  dev=/dev/$(basename "$(dirname "$n")")
  # fork: every nbd-client connection (attach, re-attach) opens the port anew.
  socat -b 262144 "UNIX-LISTEN:/run/$name.sock,fork" "OPEN:$dev" </dev/null >/tmp/socat-$name.log 2>&1 &
  ports="$ports $name"
done
echo "VMTEST ports${ports:- none}"

rc=0
if [ -r /test/run.sh ]; then
  sh /test/run.sh || rc=$?
else
  echo "VMTEST error no /test/run.sh in the initramfs"
  rc=99
fi
echo "VMTEST done rc=$rc uptime=$(cut -d' ' -f1 /proc/uptime)"
sync
poweroff -f
