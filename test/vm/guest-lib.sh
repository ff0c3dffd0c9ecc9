# Shell helpers for the VM test's guest scripts (sourced by /test/run.sh, busybox sh).
# Every result goes to the serial console as one machine-readable line:
#   VMTEST step=NAME ok t=SECONDS            a step passed (t = its duration)
#   VMTEST step=NAME fail rc=N t=SECONDS     a step failed; its output follows as
#   VMTEST log | ...                         lines, then the script stops
#   VMTEST sum DIR FILE SHA256               a file written, for the host's records
#   VMTEST mark=NAME                         a point the host reacts to (the link cut)
#   VMTEST extent DIR FILE PHYS_BLOCK_4K     where a file's first block lies on the device
#   VMTEST open=PORT                         about to use PORT: the host connects it now
# Host side: test/vm/guest-script.ts writes the scripts, test/vm/qemu-vm.ts parses the lines.

uptime_s() { cut -d' ' -f1 /proc/uptime; }

# step NAME CMD...: runs CMD, reports it, stops the whole script on failure. VMTEST lines
# that CMD prints (sums, extents) are passed through.
step() {
  _name=$1
  shift
  _t0=$(uptime_s)
  if "$@" >/tmp/step.out 2>&1; then
    grep '^VMTEST ' /tmp/step.out
    echo "VMTEST step=$_name ok t=$(awk -v a="$_t0" -v b="$(uptime_s)" 'BEGIN{printf "%.2f", b-a}')"
  else
    _rc=$?
    echo "VMTEST step=$_name fail rc=$_rc t=$(awk -v a="$_t0" -v b="$(uptime_s)" 'BEGIN{printf "%.2f", b-a}')"
    tail -n 30 /tmp/step.out | sed 's/^/VMTEST log | /'
    exit 1
  fi
}

mark() { echo "VMTEST mark=$1"; }

# attach DEV PORT EXPORT [BLOCKSIZE]: the real nbd-client, no timeout (-t 0): an outage
# behind the server must be invisible to the kernel. Retried because after a detach qemu
# re-dials the host socket about 1 s later, and a port opened before that reads EOF.
attach() {
  _i=0
  while [ $_i -lt 10 ]; do
    # The host's relay connects the port to the server on this line (see port-relay.ts).
    echo "VMTEST open=$2" >/dev/console
    if nbd-client -unix "/run/$2.sock" "$1" -b "${4:-4096}" -t 0 -N "$3"; then
      _s=$(blockdev --getsize64 "$1")
      [ "$_s" -gt 0 ] && { echo "attached $1 size=$_s"; return 0; }
    fi
    _i=$((_i + 1))
    sleep 1
  done
  return 1
}

# detach DEV: NBD_CMD_DISC, then wait until the kernel has let go of the device.
detach() {
  nbd-client -d "$1" || return 1
  _i=0
  while [ $_i -lt 50 ]; do
    [ "$(blockdev --getsize64 "$1" 2>/dev/null || echo 0)" = 0 ] && return 0
    _i=$((_i + 1))
    sleep 0.2
  done
  return 1
}

# write_files DIR COUNT KIB [PREFIX]: COUNT random files PREFIX0.. (default f0..) of KIB KiB,
# each fsync'ed; their checksums are appended to /tmp/sums_TAG (TAG = DIR, / replaced by _).
write_files() {
  _tag=$(echo "$1" | tr / _)
  _i=0
  while [ $_i -lt "$2" ]; do
    _f="${4:-f}$_i"
    dd if=/dev/urandom of="$1/$_f" bs=64k count=$(($3 / 64)) conv=fsync 2>/dev/null || return 1
    (cd "$1" && sha256sum "$_f") >>"/tmp/sums$_tag" || return 1
    _i=$((_i + 1))
  done
  sync
}

# print_sums DIR: the checksums write_files recorded, as VMTEST sum lines.
print_sums() {
  _tag=$(echo "$1" | tr / _)
  while read -r _sum _file; do echo "VMTEST sum $1 $_file $_sum"; done <"/tmp/sums$_tag"
}

# verify_files DIR SUMFILE: every file of SUMFILE (sha256sum format, names relative to DIR)
# reads back with its checksum; the page cache is dropped first so the device is read.
verify_files() {
  sync
  echo 3 >/proc/sys/vm/drop_caches
  (cd "$1" && sha256sum -c "$2")
}

# print_extent DIR FILE: first physical block (4096-byte units) of FILE, for the host's
# fault injection (it corrupts exactly a block that holds file data).
print_extent() {
  _p=$(filefrag -v -b4096 "$1/$2" | awk '$1=="0:" {gsub(/\.\./," "); print $4; exit}')
  [ -n "$_p" ] || return 1
  echo "VMTEST extent $1 $2 $_p"
}

# no_io_errors: the kernel logged no block I/O error during the run.
no_io_errors() {
  if dmesg | grep -iE 'I/O error|blk_update_request|nbd[0-9]+: (Connection timed out|Dead connection|Receive control failed|Send control failed)|Buffer I/O'; then
    return 1
  fi
  return 0
}
