/**
 * `serve --attach`: binds a kernel nbd device to this process over netlink, one socketpair per
 * connection (the kernel gets one end, our NBD server serves the other, already in the
 * transmission phase: there is no handshake on a socketpair). The device is bound with a
 * dead-connection timeout and the volume's backend identifier, so when this process dies the
 * kernel holds I/O (no errors) until a new nbdcrypt reattaches with RECONFIGURE, which the
 * kernel accepts only for the same identifier.
 *
 * A request the kernel sent on a socket that died is resent on a live one when its request
 * timeout fires; a short timeout is what makes requests in flight at a crash complete soon after
 * the reattach. While we are alive the same timer can fire on a request we legitimately hold
 * (the remote is unreachable): the kernel then shuts that socket down and requeues; we notice
 * our end closing and hand the kernel a fresh socket at once, so the only trace is a dmesg line.
 */
import { closeSync } from 'node:fs';
import { Socket } from 'node:net';
import { NbdcryptError } from '../errors.js';
import { log } from '../log.js';
import { loadNative } from '../native-addon.js';
import { enlargeSendBuffer } from '../unix-send-buffer.js';
import { NbdNetlink } from './nbd-netlink.js';
import { deviceFacts, nbdIndexes, nbdIndexOf } from './nbd-sysfs.js';
import { forgetServer, liveServer, recordServer } from './server-record.js';

export interface KernelAttachOptions {
  /** `/dev/nbdN`, or `auto`: a device already bound to this backend and waiting, else the first free one. */
  device: string;
  backend: string;
  sizeBytes: number;
  blockSize: number;
  /** NBD transmission flags the stack supports (what a handshake would advertise). */
  serverFlags: number;
  connections: number;
  reattachTimeoutS: number;
  requestTimeoutS: number;
  /** Serves one socket in the transmission phase until it closes. */
  serve(socket: Socket): void;
}

export interface KernelAttachment {
  readonly index: number;
  readonly device: string;
  /** True when the device was bound already (a crashed or handed-over server) and got new sockets. */
  readonly reattached: boolean;
  /** Disconnects the device: the kernel sends NBD_CMD_DISC on every socket, then unbinds. */
  detach(): Promise<void>;
  /** Leaves the device bound and waiting for the next server: stops replacing sockets. */
  release(): void;
}

/** Where to attach: an existing binding of ours to reconfigure, or a free index to connect. */
export function chooseDevice(
  device: string,
  backend: string,
  backendOf: (index: number) => string | undefined,
  indexes: () => number[],
  connected: (index: number) => boolean,
  liveServer: (index: number) => number | undefined,
): { index: number; reattach: boolean } {
  const judge = (index: number): { index: number; reattach: boolean } => {
    if (!connected(index)) return { index, reattach: false };
    const bound = backendOf(index);
    if (bound !== backend) {
      const what = bound ? `bound to another backend (${bound})` : 'in use by another program';
      throw new NbdcryptError('EEXIST', `/dev/nbd${index} is ${what}; refusing to attach this volume to it`);
    }
    const pid = liveServer(index);
    if (pid !== undefined && pid !== process.pid) {
      throw new NbdcryptError('EEXIST', `/dev/nbd${index} is served by a running nbdcrypt (pid ${pid}); stop it first, or hand it over with SIGUSR2`);
    }
    return { index, reattach: true };
  };
  if (device !== 'auto') return judge(nbdIndexOf(device));
  const all = indexes();
  const ours = all.find((i) => connected(i) && backendOf(i) === backend && liveServer(i) === undefined);
  if (ours !== undefined) return { index: ours, reattach: true };
  const free = all.find((i) => !connected(i));
  if (free === undefined) throw new NbdcryptError('EEXIST', 'no free nbd device (load the module with more: modprobe nbd nbds_max=32)');
  return { index: free, reattach: false };
}

export async function attachKernel(o: KernelAttachOptions): Promise<KernelAttachment> {
  const addon = loadNative();
  const nl = NbdNetlink.open();
  let stopping = false;
  try {
    const connectedSet = new Set(nl.status().filter((d) => d.connected).map((d) => d.index));
    const { index, reattach } = chooseDevice(o.device, o.backend, (i) => deviceFacts(i).backend, () => nbdIndexes(), (i) => connectedSet.has(i), (i) => liveServer(i));

    /**
     * Hands the kernel fresh sockets with `send` (CONNECT or RECONFIGURE). Only once the kernel
     * holds its ends are ours served and watched: a socket the kernel refused is just closed,
     * so a refusal can never turn into a loop of replacements.
     */
    const giveKernel = (count: number, send: (fds: number[]) => void): void => {
      const pairs = Array.from({ length: count }, () => addon!.socketPair());
      // Ours carries the replies, the kernel's the write requests (unix-send-buffer.ts).
      for (const pair of pairs) for (const fd of pair) enlargeSendBuffer(fd);
      const ours = pairs.map(([fd]) => new Socket({ fd, readable: true, writable: true, allowHalfOpen: true }));
      try {
        send(pairs.map(([, theirs]) => theirs));
      } catch (e) {
        for (const s of ours) s.destroy();
        throw e;
      } finally {
        for (const [, theirs] of pairs) closeSync(theirs);
      }
      for (const s of ours) {
        s.on('close', () => replaceLater());
        o.serve(s);
      }
    };
    let replacing = Promise.resolve();
    const replaceLater = (): void => {
      if (stopping) return;
      replacing = replacing.then(() => {
        if (stopping) return;
        try {
          giveKernel(1, (fds) => nl.reconfigure(index, o.backend, fds));
          log.info(`/dev/nbd${index}: the kernel dropped a connection (a request outlived its ${o.requestTimeoutS} s timeout); gave it a new one`);
        } catch (e) {
          log.warn(`/dev/nbd${index}: could not replace a dropped connection: ${(e as Error).message}`);
        }
      });
    };

    if (reattach) {
      let given = 0;
      for (let i = 0; i < o.connections; i++) {
        try {
          giveKernel(1, (fds) => nl.reconfigure(index, o.backend, fds));
          given++;
        } catch (e) {
          // ENOSPC: no dead socket left to replace; the device had fewer connections than we offered.
          if (given > 0 && /ENOSPC/.test((e as Error).message)) break;
          throw e;
        }
      }
      log.info(`reattached /dev/nbd${index} (${given} connection${given === 1 ? '' : 's'}): the kernel resends what it had in flight`);
    } else {
      giveKernel(o.connections, (f) =>
        nl.connect({
          index,
          sizeBytes: o.sizeBytes,
          blockSize: o.blockSize,
          timeoutS: o.requestTimeoutS,
          deadConnTimeoutS: o.reattachTimeoutS,
          serverFlags: o.serverFlags,
          backend: o.backend,
          fds: f,
        }),
      );
      log.info(`attached /dev/nbd${index} over netlink (${o.connections} connection${o.connections === 1 ? '' : 's'}, reattach window ${o.reattachTimeoutS} s)`);
    }

    recordServer(index);
    return {
      index,
      device: `/dev/nbd${index}`,
      reattached: reattach,
      detach: async () => {
        stopping = true;
        forgetServer(index);
        await replacing;
        try {
          nl.disconnect(index);
          log.info(`detached /dev/nbd${index}`);
        } catch (e) {
          log.warn(`could not detach /dev/nbd${index}: ${(e as Error).message}; run 'nbdcrypt detach /dev/nbd${index}'`);
        } finally {
          nl.close();
        }
      },
      release: () => {
        stopping = true;
        forgetServer(index);
        nl.close();
      },
    };
  } catch (e) {
    stopping = true;
    nl.close();
    throw e;
  }
}
