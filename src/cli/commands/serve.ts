/**
 * `nbdcrypt serve`: open a LUKS2 volume on TARGET and serve its plaintext over NBD on private
 * local listeners until SIGINT/SIGTERM (or, with `--unencrypted`, TARGET's raw bytes: the
 * debugging/baseline mode). `openServedDevice` is the one place that decides what BlockDevice
 * stack is served (serve-stack.ts builds the encrypted one); `serve()` is shared with `demo`.
 * Listeners are private: docs/security.md (The plaintext NBD socket).
 */
import { parseCommandArgs } from '../args.js';
import { exitStatusHelp } from '../exit-status.js';
import { untilSignal } from '../interruptible-setup.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setIoFlusher } from '../../native-addon.js';
import { startHeapGuard } from '../heap-guard.js';
import { NbdcryptError } from '../../errors.js';
import { log } from '../../log.js';
import { NbdClient } from '../../nbd/client.js';
import { NbdServer, defaultBlockSize } from '../../nbd/server.js';
import { openTarget, type TargetOptions } from '../../backend/open-target.js';
import { attachServed, checkAttachOptions, type AttachOptions, type AttachedDevice } from '../serve-attach.js';
import { serviceNotifier } from '../service-notify.js';
import { flushBlockDevice } from '../../attach/flush-device.js';
import { openEncryptedStack, type ServedStack } from '../serve-stack.js';
import { parseSize } from '../../size.js';
import { StatsReporter } from '../stats.js';
import { targetArgOptions, targetHelp, targetOptionsFromArgs } from '../target-options.js';

// File backends do their I/O on libuv's thread pool; its default of 4 threads caps the
// requests a file can have in flight. Must be set before the pool's first use (it is lazy).
process.env.UV_THREADPOOL_SIZE ??= '16';

export const help = `Usage: nbdcrypt serve TARGET [OPTIONS]
       nbdcrypt serve --unencrypted TARGET [OPTIONS]

Open the LUKS2 or LUKS1 volume on TARGET and serve its plaintext over NBD on a private local
listener, until interrupted (SIGINT or SIGTERM); then stop accepting, finish the requests
in flight, flush the remote, wipe the key and exit 0. Stack: TARGET (file, or an
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

${exitStatusHelp('after SIGINT/SIGTERM, also when interrupted while unlocking', [1, 2, 3, 4, 6, 7, 8, 9])}
Examples:
  nbdcrypt serve ssh://backup@nas/cryptdisk --key-file disk.key --listen unix:/run/nbdcrypt.sock
  nbd-client -unix /run/nbdcrypt.sock -N disk -b 4096 -t 0 /dev/nbd0     # kernel (as root)
  gpg -d disk.key.asc | nbdcrypt serve --key-file - ssh://nas/cryptdisk --attach /dev/nbd0
  nbdcrypt serve disk.img --stats-interval 10
  nbdfuse DIR/disk 'nbd+unix:///disk?socket=/tmp/nbd.sock' &       # no nbd module: a file
  nbdcrypt serve --unencrypted memory:1G --listen tcp:127.0.0.1:10809
`;

export interface ServeOptions {
  target: string;
  unencrypted: boolean;
  listen: string[];
  listenAny: boolean;
  name: string;
  readOnly: boolean;
  keyFile?: string;
  keySlot?: number;
  allowDiscards: boolean;
  /** Plaintext cache bytes (0 = off). */
  cacheBytes: number;
  statsInterval: number;
  attach?: AttachOptions;
  targetOptions: TargetOptions;
  allowCostlyKdf: boolean;
}

export function parseServeArgs(argv: string[]): ServeOptions {
  const parsed = parseCommandArgs('serve', argv, {
    ...targetArgOptions,
    unencrypted: { type: 'boolean', default: false },
    listen: { type: 'string', multiple: true, default: [] },
    'listen-any': { type: 'boolean', default: false },
    name: { type: 'string', default: 'disk' },
    'read-only': { type: 'boolean', default: false },
    'key-file': { type: 'string' },
    'key-slot': { type: 'string' },
    'allow-costly-kdf': { type: 'boolean', default: false },
    'allow-discards': { type: 'boolean', default: false },
    cache: { type: 'string', default: '64M' },
    'stats-interval': { type: 'string', default: '0' },
    attach: { type: 'string' },
    'attach-with': { type: 'string', default: 'netlink' },
    'attach-connections': { type: 'string', default: '1' },
    'reattach-timeout': { type: 'string', default: '300' },
    'kernel-timeout': { type: 'string', default: '5' },
  });
  const { values, positionals } = parsed;
  if (positionals.length !== 1) {
    throw new NbdcryptError('EUSAGE', `serve: expected exactly one TARGET, got ${positionals.length}; see 'nbdcrypt serve --help'`);
  }
  const keySlot = values['key-slot'];
  if (keySlot !== undefined && !/^\d+$/.test(keySlot)) throw new NbdcryptError('EUSAGE', `serve: --key-slot '${keySlot}' must be a keyslot number (0-31)`);
  const statsInterval = Number(values['stats-interval']);
  if (!Number.isFinite(statsInterval) || statsInterval < 0) throw new NbdcryptError('EUSAGE', `serve: --stats-interval '${values['stats-interval']}' must be a number of seconds >= 0`);
  let attach: AttachOptions | undefined;
  if (values.attach !== undefined) {
    const via = values['attach-with'];
    if (via !== 'netlink' && via !== 'nbd-client') throw new NbdcryptError('EUSAGE', `serve: --attach-with '${via}' must be netlink or nbd-client`);
    const connections = Number(values['attach-connections']);
    if (!Number.isInteger(connections) || connections < 1 || connections > 16) throw new NbdcryptError('EUSAGE', 'serve: --attach-connections must be a whole number from 1 to 16');
    attach = {
      device: values.attach,
      with: via,
      connections,
      reattachTimeoutS: Number(values['reattach-timeout']),
      requestTimeoutS: Number(values['kernel-timeout']),
    };
    checkAttachOptions(attach);
  }
  const readOnly = values['read-only'] ?? false;
  const targetOptions = targetOptionsFromArgs(values, readOnly);
  targetOptions.replayLimit ??= SERVE_REPLAY_LIMIT;
  return {
    target: positionals[0]!,
    unencrypted: values.unencrypted ?? false,
    listen: values.listen ?? [],
    listenAny: values['listen-any'] ?? false,
    name: values.name ?? 'disk',
    readOnly,
    keyFile: values['key-file'],
    keySlot: keySlot === undefined ? undefined : Number(keySlot),
    allowDiscards: values['allow-discards'] ?? false,
    cacheBytes: parseSize(values.cache ?? '64M', '--cache'),
    statsInterval,
    attach,
    targetOptions,
    allowCostlyKdf: values['allow-costly-kdf'] ?? false,
  };
}

/** The BlockDevice stack to serve for these options: plaintext (--unencrypted) or LUKS2. */
export async function openServedDevice(o: ServeOptions, signal?: AbortSignal): Promise<ServedStack> {
  if (o.unencrypted) {
    const device = await openTarget(o.target, o.targetOptions);
    return { device, blockSize: defaultBlockSize, client: device instanceof NbdClient ? device : undefined, description: `${o.target} as plaintext`, volumeId: 'raw' };
  }
  if (o.target.startsWith('memory:')) {
    throw new NbdcryptError('EUSAGE', `serve: a memory: target starts empty and holds no LUKS2 volume; serve it as plaintext with --unencrypted (debugging only), or use a file formatted with 'nbdcrypt format'`);
  }
  return openEncryptedStack({
    target: o.target,
    targetOptions: o.targetOptions,
    keyFile: o.keyFile,
    keySlot: o.keySlot,
    allowDiscards: o.allowDiscards,
    cacheBytes: o.cacheBytes,
    allowCostlyKdf: o.allowCostlyKdf,
    signal,
  });
}

function attachHints(address: string, name: string): string[] {
  if (address.startsWith('unix:')) {
    const path = address.slice(5);
    return [
      `  kernel:  nbd-client -unix ${path} -N ${name} -b 4096 -t 0 /dev/nbd0`,
      `  no nbd module: nbdfuse DIR 'nbd+unix:///${name}?socket=${path}'  (then losetup DIR/nbd)`,
    ];
  }
  const m = /^tcp:(\[[^\]]+\]|[^:]+):(\d+)$/.exec(address);
  if (!m) return [];
  const host = m[1]!.replace(/^\[|\]$/g, '');
  return [
    `  kernel:  nbd-client ${host} ${m[2]} -N ${name} -b 4096 -t 0 /dev/nbd0`,
    `  no nbd module: nbdfuse DIR 'nbd://${m[1]}:${m[2]}/${name}'  (then losetup DIR/nbd)`,
  ];
}

/**
 * Request bytes one client connection may have in flight before we stop reading its socket.
 * Each in-flight write holds its plaintext and its ciphertext, so this bounds memory. One
 * maximal request (32 MiB) keeps write throughput at the unencrypted baseline; less costs
 * throughput for little memory (docs/performance.md, In-flight limits).
 */
const SERVE_IN_FLIGHT_BYTES = 32 * 2 ** 20;
/**
 * The same over all connections together: nbdcopy and `nbd-client -C 4` open four, and four
 * times the per-connection limit would break serve's memory budget. A READ's bytes count until
 * its reply is written (docs/performance.md, In-flight limits).
 */
const SERVE_TOTAL_IN_FLIGHT_BYTES = 24 * 2 ** 20;
/** Default --replay-limit for serve: unflushed ciphertext kept for replay lives in RAM. */
const SERVE_REPLAY_LIMIT = 32 * 2 ** 20;

/** SIGINT/SIGTERM stop and detach; SIGUSR2 stops and leaves a netlink-attached device waiting for the next serve. */
function waitForSignal(): Promise<NodeJS.Signals> {
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGUSR2'];
  return new Promise((resolve) => {
    const on = (sig: NodeJS.Signals) => {
      for (const s of signals) process.off(s, on);
      resolve(sig);
    };
    for (const s of signals) process.on(s, on);
  });
}

/** Hooks for commands built on serve (demo prints its own how-to after the listeners). */
export interface ServeHooks {
  afterListen?(addresses: string[]): void;
}

export async function serve(o: ServeOptions, hooks: ServeHooks = {}): Promise<number> {
  // Before any I/O: reclaim must not wait on writeback that this process itself serves.
  const flusherProblem = setIoFlusher();
  if (flusherProblem) log.warn(`PR_SET_IO_FLUSHER not set (${flusherProblem}); a kernel nbd device under heavy memory pressure could stall`);
  const stop = waitForSignal();
  const notify = serviceNotifier(process.env.NOTIFY_SOCKET);
  // Until the stack is open a signal interrupts the opening itself (the unlock can take long).
  const opened = await untilSignal(stop, (signal) => openServedDevice(o, signal), (late) => late.device.close());
  if ('interrupted' in opened) {
    log.info(`${opened.interrupted}: interrupted while opening ${o.target}; nothing was served`);
    return 0;
  }
  const stack = opened.value;
  const device = stack.device;
  let privateDir: string | undefined;
  let attached: AttachedDevice | undefined;
  let handover = false;
  const server = new NbdServer({
    exports: [{ name: o.name, device, blockSize: stack.blockSize }],
    // --unencrypted keeps the front end's own limits: it is the benchmarks' baseline.
    limits: o.unencrypted ? {} : { maxInFlightBytes: SERVE_IN_FLIGHT_BYTES },
    maxTotalInFlightBytes: o.unencrypted ? undefined : SERVE_TOTAL_IN_FLIGHT_BYTES,
  });
  const stats = new StatsReporter({ server: server.stats, cache: stack.cache, client: stack.client });
  const stopHeapGuard = startHeapGuard();
  try {
    let listen = o.listen;
    if (listen.length === 0) {
      // mkdtemp creates the directory 0700, so only we can reach the socket inside it.
      privateDir = await mkdtemp(join(process.env.XDG_RUNTIME_DIR || tmpdir(), 'nbdcrypt-'));
      listen = [`unix:${join(privateDir, 'nbd.sock')}`];
    }
    const lines: string[] = [];
    const addresses: string[] = [];
    for (const spec of listen) {
      const address = await server.listen(spec, { listenAny: o.listenAny });
      addresses.push(address);
      lines.push(`nbdcrypt: listening on ${address}`, ...attachHints(address, o.name));
    }
    if (o.unencrypted) log.warn('serving WITHOUT encryption (--unencrypted): data is stored and served as plaintext');
    else log.info(stack.description);
    process.stdout.write(lines.join('\n') + '\n');
    hooks.afterListen?.(addresses);
    stats.start(o.statsInterval);
    if (o.attach) attached = await attachServed(server, o.name, addresses[0]!, stack.volumeId, o.target, o.attach);
    notify.ready(attached ? `serving ${o.target} on ${attached.device}` : `serving ${o.target} on ${addresses.join(', ')}`);
    const sig = await stop;
    handover = sig === 'SIGUSR2' && attached !== undefined && o.attach?.with === 'netlink';
    notify.stopping(handover ? 'handing over' : 'stopping');
    if (sig === 'SIGUSR2' && !handover) log.warn('SIGUSR2: nothing to hand over (no netlink-attached device); stopping as for SIGTERM');
    log.info(handover ? `SIGUSR2: handing ${attached!.device} over: finishing requests in flight, flushing, leaving the device waiting for the next serve` : `${sig}: finishing requests in flight and closing`);
  } finally {
    stats.stop();
    stopHeapGuard();
    if (attached && handover) {
      // Sockets closed from here on are not replaced; the kernel resends what we did not answer.
      attached.release();
    } else if (attached) {
      // The kernel must let go first: its dirty pages are written through us before the disconnect.
      await flushBlockDevice(attached.device);
      await attached.detach();
    }
    await server.close();
    await device.flush().catch((e: Error) => log.warn(`final flush failed: ${e.message}`));
    await device.close();
    if (privateDir) await rm(privateDir, { recursive: true, force: true });
  }
  const s = server.stats;
  log.info(`served ${s.connections} connections, ${s.requests} requests, ${s.bytesRead} bytes read, ${s.bytesWritten} bytes written`);
  return 0;
}

export async function run(argv: string[]): Promise<number> {
  return serve(parseServeArgs(argv));
}
