/**
 * The text of `nbdcrypt serve --help`: every serve option, the output, the exit statuses and
 * examples, man-page style. Kept apart from the code so either can be read in one sitting.
 */
import { targetHelp } from './target-options.js';

export const serveHelp = `Usage: nbdcrypt serve TARGET [OPTIONS]
       nbdcrypt serve --unencrypted TARGET [OPTIONS]

Open the LUKS2 volume on TARGET and serve its plaintext over NBD on a private local
listener, until interrupted (SIGINT or SIGTERM); then stop accepting, finish the requests
in flight, flush the remote, wipe the key and exit 0. Stack: TARGET (file, or an
nbd-server reached over SSH/TCP/unix) -> aes-xts-plain64 (LUKS2) -> plaintext sector cache
-> NBD server. The kernel attaches with nbd-client; without the nbd module use nbdfuse.

${targetHelp}
Volume options:
  --key-file FILE   passphrase from FILE (the whole file is the key, as in cryptsetup);
                    '-' reads standard input (gpg -d key.asc | nbdcrypt serve --key-file -)
                    Without it the passphrase is asked on the terminal without echo.
  --key-slot N      try only keyslot N (default: every keyslot)
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
  --attach /dev/nbdX  run 'nbd-client' to attach the export to /dev/nbdX (needs root,
                    nbd-client and the nbd kernel module) and detach it on exit
  -h, --help        show this help

Output: once a listener accepts connections a line
  nbdcrypt: listening on unix:/run/user/1000/nbdcrypt-XXXX/nbd.sock
is printed to standard output (one per listener), followed by attach hints. Diagnostics,
reconnects and stats go to standard error. The passphrase is never printed.

Memory: the process marks itself PR_SET_IO_FLUSHER (Linux >= 5.6, needs root or
CAP_SYS_RESOURCE) so that writeback to /dev/nbdX cannot deadlock on memory reclaim.

Exit status: 0 after SIGINT/SIGTERM, 2 usage, 3 wrong passphrase, 4 no/damaged LUKS2
header, 6 SSH host key or authentication, 7 remote unreachable or export missing.

Examples:
  nbdcrypt serve ssh://backup@nas/cryptdisk --key-file disk.key --listen unix:/run/nbdcrypt.sock
  nbd-client -unix /run/nbdcrypt.sock -N disk -b 4096 -t 0 /dev/nbd0     # kernel (as root)
  gpg -d disk.key.asc | nbdcrypt serve --key-file - ssh://nas/cryptdisk --attach /dev/nbd0
  nbdcrypt serve disk.img --stats-interval 10
  nbdfuse DIR/disk 'nbd+unix:///disk?socket=/tmp/nbd.sock' &       # no nbd module: a file
  nbdcrypt serve --unencrypted memory:1G --listen tcp:127.0.0.1:10809
`;
