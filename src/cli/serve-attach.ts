/**
 * `serve --attach`: puts the served export on a kernel nbd device, over netlink by default
 * (the device survives this process: a crash or a handover leaves it waiting for the next
 * serve, which reattaches), or with the nbd-client program (`--attach-with nbd-client`, for
 * kernels without the netlink interface; the device then dies with this process).
 */
import type { NbdServer } from '../nbd/server.js';
import { TF } from '../nbd/protocol.js';
import { attachKernel } from '../attach/kernel-attach.js';
import { attachNbd, checkAttachPossible, nbdModuleAvailable, type ToolFinder } from '../attach/nbd-client-attach.js';
import { backendIdentifier } from '../attach/backend-id.js';
import { nbdIndexOf } from '../attach/nbd-sysfs.js';
import { NbdcryptError } from '../errors.js';
import { log } from '../log.js';

export type AttachWith = 'netlink' | 'nbd-client';

export interface AttachOptions {
  /** `/dev/nbdN`, or `auto` (netlink only). */
  device: string;
  with: AttachWith;
  /** Kernel connections (socketpairs); more than one only when the export allows multi-conn. */
  connections: number;
  /** How long the kernel holds I/O for a dead server before failing it. */
  reattachTimeoutS: number;
  /** How long a request may wait on a dead connection before the kernel resends it on a new one. */
  requestTimeoutS: number;
}

export interface AttachedDevice {
  device: string;
  /** Unbinds the device (after the filesystem on it was unmounted). */
  detach(): Promise<void>;
  /** Leaves the device bound and waiting for the next serve (netlink only). */
  release(): void;
}

/** Checks the option values and, for nbd-client, that the program and the module are there, before any passphrase is asked. */
export function checkAttachOptions(o: AttachOptions, find: ToolFinder): void {
  for (const [name, v] of [['--reattach-timeout', o.reattachTimeoutS], ['--kernel-timeout', o.requestTimeoutS]] as const) {
    if (!Number.isInteger(v) || v < 1 || v > 86_400) throw new NbdcryptError('EUSAGE', `${name} must be a whole number of seconds from 1 to 86400`);
  }
  if (o.device !== 'auto') nbdIndexOf(o.device);
  if (o.with === 'nbd-client') {
    if (o.device === 'auto') throw new NbdcryptError('EUSAGE', "--attach auto needs netlink; name the device (/dev/nbdN) with --attach-with nbd-client");
    checkAttachPossible(o.device, find);
  } else if (!nbdModuleAvailable(find)) {
    throw new NbdcryptError('EUSAGE', `--attach ${o.device}: the nbd kernel module is not available (/sys/module/nbd absent and 'modprobe nbd' failed); serve without --attach and use nbdfuse + losetup (see README)`);
  }
}

export async function attachServed(
  server: NbdServer,
  exportName: string,
  listenAddress: string,
  volumeId: string,
  target: string,
  o: AttachOptions,
  find: ToolFinder,
): Promise<AttachedDevice> {
  const facts = server.exportFacts(exportName);
  if (o.with === 'nbd-client') {
    const a = await attachNbd(o.device, listenAddress, exportName, facts.blockSize.preferred, find);
    return {
      device: a.device,
      detach: () => a.detach(),
      release: () => log.warn(`${a.device} was attached with nbd-client and cannot outlive this process; it is detached`),
    };
  }
  const multiConn = (facts.transmissionFlags & TF.CAN_MULTI_CONN) !== 0;
  const connections = multiConn ? o.connections : 1;
  if (o.connections > 1 && !multiConn) log.warn(`--attach-connections ${o.connections}: the export cannot promise multi-connection consistency; using 1`);
  const a = await attachKernel({
    device: o.device,
    backend: backendIdentifier(volumeId, target),
    sizeBytes: facts.size,
    blockSize: facts.blockSize.preferred,
    serverFlags: facts.transmissionFlags,
    connections,
    reattachTimeoutS: o.reattachTimeoutS,
    requestTimeoutS: o.requestTimeoutS,
    serve: (socket) => server.adopt(socket, exportName),
  });
  return { device: a.device, detach: () => a.detach(), release: () => a.release() };
}
