/**
 * The text of `nbdcrypt serve --help`: every serve option, the output, the exit statuses and
 * examples, man-page style. Kept apart from the code so either can be read in one sitting.
 */
import { exitStatusHelp } from './exit-status.js';
import { targetHelp } from './target-options.js';

export const serveHelp = `Usage: nbdcrypt serve TARGET [OPTIONS]
       nbdcrypt serve --unencrypted TARGET [OPTIONS]

Open the LUKS2 or LUKS1 volume on TARGET and serve its plaintext over NBD on a private local
listener, until interrupted (SIGINT or SIGTERM); then stop accepting, finish the requests
in flight, flush the remote, wipe the key and exit 0. Bounded even when the remote stalls
or is down: requests in flight get up to 30 s, the final flush up to 10 s more, and what
is still unanswered then fails with EIO (exit within about 45 s). Stack: TARGET (file, or an
nbd-server reached over SSH/TCP/unix) -> the volume's cipher -> plaintext sector cache
-> NBD server. The kernel attaches with nbd-client; without the nbd module use nbdfuse.

${targetHelp}
Volume options:
  --key-file FILE   passphrase from FILE (the whole file is the key, as in cryptsetup);
                    '-' reads standard input (gpg -d key.asc | nbdcrypt serve --key-file -)
                    Without it the passphrase is asked on the terminal without echo.
  --key-slot N      try only keyslot N (default: every keyslot)
  --allow-costly-kdf  unlock even if a keyslot asks for a key derivation cost far above
                    what cryptsetup or nbdcrypt format write (see docs/security.md);
                    without it such a header is refused (exit 4)
  --read-only       serve a read-only export (and open the remote read-only)
  --allow-discards  pass TRIM of whole sectors to the remote (frees space there, but shows
                    which blocks are unused: see README "Security notes")
  --cache SIZE      plaintext cache, write-through (default 64M; 0 turns it off)
  --unencrypted     DEBUGGING / BASELINE MODE: serve TARGET's bytes as they are, with no
                    encryption at all. Whatever is written through the NBD socket is
                    stored in plaintext. Use it to test NBD clients and as the baseline
                    that benchmarks compare the encrypted path against.

Serving options:
  --listen ADDR     where to listen, repeatable:
                      unix:PATH          a unix socket (made mode 0600)
                      tcp:HOST:PORT      TCP; HOST must be loopback (127.0.0.1, ::1)
                                         unless --listen-any; PORT 0 picks a free port
                    Default: unix socket nbd.sock in a fresh private (0700) directory
                    under $XDG_RUNTIME_DIR or /tmp, removed on exit.
  --listen-any      allow a non-loopback TCP address. The NBD socket carries plaintext
                    and has no authentication: anyone who can reach it can read and
                    write the disk.
  --name NAME       export name (default: disk)
  --stats-interval S  print a stats line every S seconds (requests, MB/s, cache hit rate,
                    queue depth, reconnects); SIGUSR1 prints one at any time
  --attach DEVICE   attach the export to the kernel nbd device DEVICE (/dev/nbdN, or
                    'auto': a device this volume left waiting, else the first free one);
                    needs root and the nbd kernel module. SIGINT/SIGTERM detach it;
                    SIGUSR2 hands it over (see below).
  --attach-with HOW netlink (default): configure the device over netlink with a socketpair
                    per connection; the device outlives this process, so a crash or an
                    upgrade is a pause for the filesystem, not an error.
                    nbd-client: run 'nbd-client -t 0' against the listener (older kernels);
                    the device dies with this process.
  --attach-connections N  kernel connections (1-16, default 1); more than 1 only when
                    the export is safe for multi-connection (CAN_MULTI_CONN)
  --reattach-timeout S  netlink: how long the kernel holds I/O for a dead nbdcrypt, waiting
                    for the next serve to reattach, before it fails the I/O (default 300)
  --kernel-timeout S  netlink: a request the kernel sent to a connection that died is sent
                    again on a live one after S seconds (default 5). While nbdcrypt runs,
                    a request it holds longer (the remote is unreachable) makes the kernel
                    drop that connection; nbdcrypt gives it a new one at once.
  -h, --help        show this help

Handover (upgrade without unmounting): SIGUSR2 makes serve stop reading new requests,
finish and acknowledge the ones in flight, flush the remote, and exit 0 WITHOUT detaching
the netlink-attached device; the kernel holds its I/O until the next 'nbdcrypt serve
SAME-TARGET --attach DEVICE' reattaches (within --reattach-timeout). The same happens
after a crash or SIGKILL. Only a serve of the same volume and target can reattach: the
device is bound to 'nbdcrypt:VOLUME-UUID:TARGET' (see /sys/block/nbdN/backend and
'nbdcrypt status'). 'nbdcrypt detach DEVICE' releases a device nobody will reattach.

Service manager: with NOTIFY_SOCKET set (systemd Type=notify), serve sends READY=1 once it
listens and the device is attached, and STOPPING=1 when it shuts down.

Output: once a listener accepts connections a line
  nbdcrypt: listening on unix:/run/user/1000/nbdcrypt-XXXX/nbd.sock
is printed to standard output (one per listener), followed by attach hints. Diagnostics,
reconnects and stats go to standard error. The passphrase is never printed.

Memory: the process marks itself PR_SET_IO_FLUSHER (Linux >= 5.6, needs root or
CAP_SYS_RESOURCE) so that writeback to /dev/nbdX cannot deadlock on memory reclaim.

${exitStatusHelp('after SIGINT/SIGTERM, also when interrupted while unlocking', [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])}
Examples:
  nbdcrypt serve ssh://backup@nas/cryptdisk --key-file disk.key --listen unix:/run/nbdcrypt.sock
  nbd-client -unix /run/nbdcrypt.sock -N disk -b 4096 -t 0 /dev/nbd0     # kernel (as root)
  gpg -d disk.key.asc | nbdcrypt serve --key-file - ssh://nas/cryptdisk --attach /dev/nbd0
  nbdcrypt serve disk.img --stats-interval 10
  nbdfuse DIR/disk 'nbd+unix:///disk?socket=/tmp/nbd.sock' &       # no nbd module: a file
  nbdcrypt serve --unencrypted memory:1G --listen tcp:127.0.0.1:10809
`;
