/**
 * The guest script of the reattach test: nbdcrypt itself runs inside the VM (the host's root
 * filesystem is shared read-only over virtio-9p and nbdcrypt runs in a chroot of it, so the
 * guest uses the host's node and this tree's build), serves a LUKS2 volume on the virtio disk
 * /dev/vda and attaches /dev/nbd0 over netlink. ext4 on it is written by a writer that logs
 * each file it completed with conv=fsync. serve is killed with SIGKILL and started again,
 * then handed over with SIGUSR2 and started again; a serve of another volume (/dev/vdb) must
 * be refused. At the end every logged file is read back, e2fsck runs, and dmesg is searched
 * for I/O errors. Results are VMTEST lines (guest-lib.sh); the writer's log goes to the host
 * as `VMTEST wlog UPTIME NAME` lines so it can measure the longest stall.
 */

export interface ReattachScriptOptions {
  /** Absolute path of this tree on the host (and so in the chroot). */
  repo: string;
  /** Files each phase must add before the next one starts. */
  filesPerPhase: number;
  /** Seconds between SIGKILL and the new serve. */
  downSeconds: number;
}

export function reattachScript(o: ReattachScriptOptions): string {
  const nbdcrypt = `chroot /host /usr/bin/env TMPDIR=/run /usr/bin/node ${o.repo}/bin/nbdcrypt.js`;
  const serveArgs = '--key-file /run/key --listen unix:/run/nbdcrypt.sock --attach /dev/nbd0 --attach-connections 4 --kernel-timeout 3';
  return `set -u
. /test/guest-lib.sh
H=/host

host_root() {
  mkdir -p $H
  mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144 hostroot $H || return 1
  # /run becomes the chroot's only writable place (TMPDIR below); the host's /tmp stays
  # visible, since this tree itself may live there.
  mount -t proc proc $H/proc && mount -t sysfs sysfs $H/sys && mount -t devtmpfs devtmpfs $H/dev &&
    mount -t tmpfs tmpfs $H/run || return 1
  cp /test/key $H/run/key
  chroot $H /usr/bin/node --version
}

# serve_bg NAME DEV: nbdcrypt serve in the background; its pid in /tmp/serve.pid.
serve_bg() {
  ${nbdcrypt} serve "$2" ${serveArgs} >/tmp/serve-$1.log 2>&1 </dev/null &
  echo $! >/tmp/serve.pid
}

# wait_log NAME PATTERN SECONDS: until serve's log shows PATTERN; the log on failure.
wait_log() {
  _n=0
  while ! grep -q "$2" /tmp/serve-$1.log 2>/dev/null; do
    _n=$((_n + 1))
    if [ $_n -gt $(($3 * 5)) ] || ! kill -0 "$(cat /tmp/serve.pid)" 2>/dev/null; then cat /tmp/serve-$1.log; return 1; fi
    sleep 0.2
  done
  grep -E 'attached|reattached' /tmp/serve-$1.log | sed "s/^/VMTEST info serve-$1 /"
}

written() { grep -c ' w' /tmp/writer.log 2>/dev/null || echo 0; }

# wait_files N SECONDS: until the writer has completed N files.
wait_files() {
  _n=0
  while [ "$(written)" -lt "$1" ]; do
    _n=$((_n + 1))
    [ $_n -gt $(($2 * 5)) ] && { echo "only $(written) of $1 files after $2 s"; tail -n 5 /tmp/writer.log; return 1; }
    sleep 0.2
  done
}

writer() {
  _i=0
  while [ ! -e /tmp/stop-writer ]; do
    if dd if=/dev/urandom of=/mnt/r/w$_i bs=64k count=2 conv=fsync 2>/tmp/dd.err; then
      echo "$(uptime_s) w$_i $(sha256sum /mnt/r/w$_i | cut -d' ' -f1)" >>/tmp/writer.log
    else
      echo "$(uptime_s) ERR w$_i $(cat /tmp/dd.err)" >>/tmp/writer-errors.log
    fi
    _i=$((_i + 1))
  done
}

stop_writer() {
  touch /tmp/stop-writer
  wait "$(cat /tmp/writer.pid)"
  [ ! -s /tmp/writer-errors.log ] || { cat /tmp/writer-errors.log; return 1; }
}

kill9() {
  echo "VMTEST info killed-at $(uptime_s) files=$(written)"
  kill -9 "$(cat /tmp/serve.pid)"
  sleep ${o.downSeconds}
}

handover() {
  kill -USR2 "$(cat /tmp/serve.pid)"
  wait "$(cat /tmp/serve.pid)"
  _rc=$?
  echo "VMTEST info handed-over-at $(uptime_s) rc=$_rc files=$(written)"
  [ $_rc = 0 ] && [ -e /sys/block/nbd0/backend ]
}

wrong_volume() {
  ${nbdcrypt} serve /dev/vdb ${serveArgs.replace('/run/nbdcrypt.sock', '/run/other.sock')} >/tmp/serve-wrong.log 2>&1 </dev/null
  _rc=$?
  cat /tmp/serve-wrong.log
  [ $_rc = 5 ] && grep -q 'bound to another backend' /tmp/serve-wrong.log
}

# status_alive: 'nbdcrypt status' lists nbd0 as served by the running serve (bounded in time).
status_alive() {
  timeout 120 ${nbdcrypt} status >/tmp/status.txt 2>&1
  _rc=$?
  sed 's/^/VMTEST info status /' /tmp/status.txt
  [ $_rc = 0 ] && grep -q "^/dev/nbd0 .* pid $(cat /tmp/serve.pid) alive " /tmp/status.txt
}

# stall_reconnect: serve stopped longer than --kernel-timeout while the writer runs: the kernel
# drops the connections whose requests timed out and requeues them; once serve runs again it
# must notice and hand the kernel new sockets on its own (the process never died).
stall_reconnect() {
  kill -STOP "$(cat /tmp/serve.pid)"
  sleep 6
  kill -CONT "$(cat /tmp/serve.pid)"
  _n=0
  while ! grep -q 'gave it a new one' /tmp/serve-3.log; do
    _n=$((_n + 1))
    [ $_n -gt 300 ] && { tail -n 20 /tmp/serve-3.log; return 1; }
    sleep 0.2
  done
  grep 'gave it a new one' /tmp/serve-3.log | sed 's/^/VMTEST info replaced /'
}

verify_writer_files() {
  sync
  echo 3 >/proc/sys/vm/drop_caches
  _bad=0
  while read -r _t _f _s; do
    [ "$(sha256sum /mnt/r/$_f | cut -d' ' -f1)" = "$_s" ] || { echo "MISMATCH $_f"; _bad=$((_bad + 1)); }
    echo "VMTEST wlog $_t $_f"
  done </tmp/writer.log
  echo "VMTEST info verified $(written) files, $_bad bad"
  [ $_bad = 0 ]
}

io_errors() {
  dmesg | grep -E 'nbd|I/O error|EXT4-fs (error|warning)|Buffer I/O' | tail -n 40 | sed 's/^/VMTEST info dmesg /'
  ! dmesg | grep -qE 'I/O error|Buffer I/O|EXT4-fs error|Aborting journal'
}

detached() {
  kill -TERM "$(cat /tmp/serve.pid)"
  wait "$(cat /tmp/serve.pid)"
  [ "$(blockdev --getsize64 /dev/nbd0)" = 0 ]
}

mkdir -p /mnt/r
step host-root host_root
step serve-1 serve_bg 1 /dev/vda
step attach-1 wait_log 1 'attached /dev/nbd0 over netlink' 120
step mkfs.ext4 mkfs.ext4 -q -F /dev/nbd0
step mount mount /dev/nbd0 /mnt/r
writer & echo $! >/tmp/writer.pid
step writes-1 wait_files ${o.filesPerPhase} 120
step kill-9 kill9
step serve-2 serve_bg 2 /dev/vda
step reattach-2 wait_log 2 'reattached /dev/nbd0' 120
step writes-after-kill wait_files $(($(written) + ${o.filesPerPhase})) 120
step handover handover
step serve-3 serve_bg 3 /dev/vda
step reattach-3 wait_log 3 'reattached /dev/nbd0' 120
step writes-after-handover wait_files $(($(written) + ${o.filesPerPhase})) 120
step other-volume-refused wrong_volume
step writes-after-refusal wait_files $(($(written) + 2)) 60
step status status_alive
step stall-reconnect stall_reconnect
step writes-after-stall wait_files $(($(written) + 2)) 120
step stop-writer stop_writer
step verify verify_writer_files
step umount umount /mnt/r
step e2fsck e2fsck -fn /dev/nbd0
step no-io-errors io_errors
step detach-on-sigterm detached
`;
}
