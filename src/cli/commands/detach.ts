/**
 * `nbdcrypt detach /dev/nbdX`: disconnects a kernel nbd device over netlink, whether or not its
 * server still runs (a device left waiting by a crashed or handed-over serve is released; the
 * kernel fails the I/O it still holds). Unmount first.
 */
import { parseCommandArgs } from '../args.js';
import { NbdNetlink } from '../../attach/nbd-netlink.js';
import { nbdIndexOf } from '../../attach/nbd-sysfs.js';
import { liveServer } from '../../attach/server-record.js';
import { NbdcryptError } from '../../errors.js';
import { log } from '../../log.js';

export const help = `Usage: nbdcrypt detach DEVICE

Disconnect the kernel nbd device DEVICE (/dev/nbdN) over netlink. The kernel sends the
server a disconnect request on every connection, then unbinds the device.

Use it for a device whose nbdcrypt serve has died or was handed over (SIGUSR2) and will not
be started again: such a device holds its I/O for the reattach window (--reattach-timeout of
serve) and fails it only then; detach releases it at once. A running 'nbdcrypt serve
--attach' detaches by itself on Ctrl-C or SIGTERM.

Unmount the filesystem on DEVICE first: I/O still waiting in the device fails.

Options:
  -h, --help    show this help

Exit status:
  0  detached
  1  the kernel refused (see the message)
  2  usage error (not an nbd device name)
  5  DEVICE is not attached
  9  no kernel nbd support here (module not loaded, or no native addon)

Example:
  nbdcrypt detach /dev/nbd0
`;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommandArgs('detach', argv, {});
  if (parsed.positionals.length !== 1) throw new NbdcryptError('EUSAGE', "detach needs exactly one DEVICE, e.g. /dev/nbd0; see 'nbdcrypt detach --help'");
  const device = parsed.positionals[0]!;
  const index = nbdIndexOf(device);
  const nl = NbdNetlink.open();
  try {
    const status = nl.status(index);
    if (!status.some((d) => d.index === index && d.connected)) throw new NbdcryptError('EEXIST', `${device} is not attached`);
    const pid = liveServer(index);
    if (pid !== undefined) log.warn(`${device} is served by running pid ${pid}; it will see a disconnect`);
    nl.disconnect(index);
    log.info(`detached ${device}`);
    return 0;
  } finally {
    nl.close();
  }
}
