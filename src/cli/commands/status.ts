/**
 * `nbdcrypt status`: every kernel nbd device bound to nbdcrypt (its backend identifier starts
 * with `nbdcrypt:`), from netlink STATUS and sysfs: device, volume UUID and target, size,
 * whether the server process that attached it is alive. A device whose server is gone is
 * waiting for a reattach (or for its reattach window to end).
 */
import { parseCommandArgs } from '../args.js';
import { NbdNetlink } from '../../attach/nbd-netlink.js';
import { deviceFacts } from '../../attach/nbd-sysfs.js';
import { liveServer } from '../../attach/server-record.js';
import { NbdcryptError } from '../../errors.js';

export const help = `Usage: nbdcrypt status [--all]

List the kernel nbd devices attached by nbdcrypt (serve --attach over netlink), one line each:

  DEVICE      SIZE  SERVER            BACKEND
  /dev/nbd0   1.0G  pid 4242 alive  nbdcrypt:UUID:ssh://backup@nas/cryptdisk

SERVER is 'pid N alive' while a serve of it runs, 'waiting (no server)' when its serve
died or was handed over: the kernel then holds the device's I/O until a serve with the
same volume and target reattaches (or its --reattach-timeout ends).

Options:
  --all         also list nbd devices attached by other programs (nbd-client, qemu-nbd -c)
  -h, --help    show this help

Exit status:
  0  listed (possibly nothing)
  9  no kernel nbd support here (module not loaded, or no native addon)
`;

function human(bytes: number | undefined): string {
  if (bytes === undefined) return '?';
  const units = ['B', 'K', 'M', 'G', 'T', 'P'];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(1)}${units[u]}`;
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommandArgs('status', argv, { all: { type: 'boolean' } });
  if (parsed.positionals.length !== 0) throw new NbdcryptError('EUSAGE', "status takes no arguments; see 'nbdcrypt status --help'");
  const nl = NbdNetlink.open();
  let devices;
  try {
    devices = nl.status().filter((d) => d.connected);
  } finally {
    nl.close();
  }
  const rows = devices
    .map((d) => deviceFacts(d.index))
    .filter((f) => parsed.values.all || f.backend?.startsWith('nbdcrypt:'))
    .map((f) => {
      const pid = liveServer(f.index);
      const server = pid !== undefined ? `pid ${pid} alive` : f.backend?.startsWith('nbdcrypt:') ? 'waiting (no server)' : '-';
      return [f.device, human(f.sizeBytes), server, f.backend ?? '(no backend identifier)'];
    });
  const table = [['DEVICE', 'SIZE', 'SERVER', 'BACKEND'], ...rows];
  const widths = [0, 1, 2].map((c) => Math.max(...table.map((r) => r[c]!.length)));
  for (const r of table) process.stdout.write(r.map((cell, c) => (c < 3 ? cell.padEnd(widths[c]! + 2) : cell)).join('').trimEnd() + '\n');
  return 0;
}
