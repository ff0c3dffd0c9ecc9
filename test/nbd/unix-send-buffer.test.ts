/**
 * Unix NBD connections get a 1 MiB send buffer (src/unix-send-buffer.ts) on both sides of
 * nbdcrypt: those the NBD server accepts, and those the unix transport opens to a local
 * nbd-server. Read back independently with `ss`, the kernel's own socket report. Root may go
 * past net.core.wmem_max; anyone else gets at most twice wmem_max, as socket(7) says.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readlinkSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { MemoryDevice } from '../../src/block/memory-device.js';
import { NbdServer } from '../../src/nbd/server.js';
import { unixTransport } from '../../src/transport/unix.js';
import { socketFd, UNIX_SEND_BUFFER_BYTES } from '../../src/unix-send-buffer.js';
import { startNbdServer } from '../../peers/nbd-server.js';
import { requireTool, run, scratchDir } from '../../peers/tools.js';

/** What the kernel grants: SO_SNDBUFFORCE for root, else SO_SNDBUF capped at wmem_max (then doubled). */
function expectedSendBuffer(): number {
  if (process.getuid?.() === 0) return UNIX_SEND_BUFFER_BYTES;
  const wmemMax = Number(readFileSync('/proc/sys/net/core/wmem_max', 'utf8'));
  return Math.min(UNIX_SEND_BUFFER_BYTES, 2 * wmemMax);
}

/** The send buffer in the one connected socket `ss` lists for `filter`, for which `pick` holds. */
function sendBufferOf(filter: string[], pick: (line: string) => boolean = () => true): number {
  const out = run(requireTool('ss', 'iproute2'), ['-x', '-m', '-O', '-H', ...filter]).stdout;
  const lines = out.split('\n').filter((l) => l.includes('ESTAB') && pick(l));
  assert.equal(lines.length, 1, `ss should show one such connection:\n${out}`);
  const tb = /\btb(\d+)/.exec(lines[0]!)?.[1];
  assert.ok(tb, `no send buffer in ss output: ${lines[0]}`);
  return Number(tb);
}

test('a connection accepted on a unix socket has the larger send buffer', { timeout: 30_000 }, async () => {
  const dir = scratchDir('nbdcrypt-sndbuf-');
  const server = new NbdServer({ exports: [{ name: 'disk', device: new MemoryDevice(1 << 20) }] });
  let client: Socket | undefined;
  try {
    const sock = join(dir.path, 'nbd.sock');
    await server.listen(`unix:${sock}`);
    client = connect(sock);
    // The server's greeting proves the connection was accepted (and its buffer set) first.
    await new Promise<void>((resolve, reject) => {
      client!.once('data', () => resolve());
      client!.once('error', reject);
    });
    // The server's end is the socket bound to the path.
    assert.equal(sendBufferOf(['src', sock]), expectedSendBuffer());
  } finally {
    client?.destroy();
    await server.close(1000);
    dir.remove();
  }
});

test('a connection the unix transport opens to nbd-server has the larger send buffer', { timeout: 30_000 }, async () => {
  const server = await startNbdServer({ unixSocket: true });
  const stream = await unixTransport({ path: server.socketPath! }).open();
  try {
    // A client socket is unnamed: ss lists it by its inode, as '* INODE' in the local column.
    const fd = socketFd(stream as Socket);
    assert.ok(fd !== undefined, 'the connection has a descriptor');
    const inode = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`))?.[1];
    assert.ok(inode, 'the descriptor is a socket');
    const local = new RegExp(`^u_str\\s+ESTAB\\s+\\d+\\s+\\d+\\s+\\*\\s+${inode}\\s`);
    assert.equal(sendBufferOf([], (l) => local.test(l)), expectedSendBuffer());
  } finally {
    stream.destroy();
    await server.stop();
  }
});
