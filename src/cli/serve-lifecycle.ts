/**
 * The life cycle of `nbdcrypt serve` (and of `demo`, which serves the same way): start (mark
 * the process an I/O flusher, open the stack, listen, print the listening lines, attach),
 * wait for SIGINT/SIGTERM, then shut down in the order that loses nothing: detach the kernel
 * (its dirty pages are flushed through us first), stop accepting and finish the requests in
 * flight, flush the remote, wipe the key (closing the stack), remove the private socket
 * directory. SIGUSR2 does the same but leaves a netlink-attached device bound and waiting
 * for the next serve (a handover: docs/kernel-attach.md).
 * Listeners are private: docs/security.md (The plaintext NBD socket).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setIoFlusher } from '../native-addon.js';
import { findExecutable } from './environment.js';
import { log } from '../log.js';
import { NbdServer } from '../nbd/server.js';
import { flushBlockDevice } from '../attach/flush-device.js';
import { attachServed, checkAttachOptions, type AttachedDevice } from './serve-attach.js';
import { serviceNotifier } from './service-notify.js';
import type { ServeOptions } from './serve-options.js';
import type { ServeRuntime } from './serve-runtime.js';
import { openServedDevice } from './serve-stack.js';
import { untilSignal } from './interruptible-setup.js';
import { StatsReporter } from './stats.js';

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

/** Hooks for commands built on serve (demo prints its own how-to after the listeners). */
export interface ServeHooks {
  afterListen?(addresses: string[]): void;
}

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

/** Serves until SIGINT/SIGTERM; resolves with the exit status (0). */
export async function serve(o: ServeOptions, runtime: ServeRuntime, hooks: ServeHooks = {}): Promise<number> {
  // Before any I/O: reclaim must not wait on writeback that this process itself serves.
  const flusherProblem = setIoFlusher();
  if (flusherProblem) log.warn(`PR_SET_IO_FLUSHER not set (${flusherProblem}); a kernel nbd device under heavy memory pressure could stall`);
  if (o.attach) checkAttachOptions(o.attach, findExecutable);
  const stop = waitForSignal();
  const notify = serviceNotifier(runtime.env.notifySocket);
  // Until the stack is open a signal interrupts the opening itself (the unlock can take long).
  const opened = await untilSignal(stop, (signal) => openServedDevice(o, runtime, signal), (late) => late.device.close());
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
    exports: [{ name: o.name, device }],
    // --unencrypted keeps the front end's own limits: it is the benchmarks' baseline.
    limits: o.unencrypted ? {} : { maxInFlightBytes: SERVE_IN_FLIGHT_BYTES },
    maxTotalInFlightBytes: o.unencrypted ? undefined : SERVE_TOTAL_IN_FLIGHT_BYTES,
    io: runtime.io,
  });
  const stats = new StatsReporter({ server: server.stats, cache: stack.cache, client: stack.client });
  runtime.heapGuard.start();
  try {
    let listen = o.listen;
    if (listen.length === 0) {
      // mkdtemp creates the directory 0700, so only we can reach the socket inside it.
      privateDir = await mkdtemp(join(runtime.env.runtimeDir ?? tmpdir(), 'nbdcrypt-'));
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
    if (o.attach) attached = await attachServed(server, o.name, addresses[0]!, stack.volumeId, o.target, o.attach, findExecutable);
    notify.ready(attached ? `serving ${o.target} on ${attached.device}` : `serving ${o.target} on ${addresses.join(', ')}`);
    const sig = await stop;
    handover = sig === 'SIGUSR2' && attached !== undefined && o.attach?.with === 'netlink';
    notify.stopping(handover ? 'handing over' : 'stopping');
    if (sig === 'SIGUSR2' && !handover) log.warn('SIGUSR2: nothing to hand over (no netlink-attached device); stopping as for SIGTERM');
    log.info(handover ? `SIGUSR2: handing ${attached!.device} over: finishing requests in flight, flushing, leaving the device waiting for the next serve` : `${sig}: finishing requests in flight and closing`);
  } finally {
    stats.stop();
    runtime.heapGuard.stop();
    if (attached && handover) {
      // Sockets closed from here on are not replaced; the kernel resends what we did not answer.
      attached.release();
    } else if (attached) {
      // The kernel must let go first: its dirty pages are written through us before the disconnect.
      await flushBlockDevice(attached.device);
      await attached.detach();
    }
    await server.close();
    // A remote's final flush is bounded by its close() (a stalled remote must not keep us
    // here); closing the bottom first also fails what still waits on it, so the layers
    // above drain. A file flushes here.
    if (stack.client) await stack.client.close();
    else await device.flush().catch((e: Error) => log.warn(`final flush failed: ${e.message}`));
    await device.close();
    if (privateDir) await rm(privateDir, { recursive: true, force: true });
  }
  const s = server.stats;
  log.info(`served ${s.connections} connections, ${s.requests} requests, ${s.bytesRead} bytes read, ${s.bytesWritten} bytes written`);
  return 0;
}
