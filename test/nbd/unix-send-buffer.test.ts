/**
 * The NBD server's unix connections get a 1 MiB send buffer (src/unix-send-buffer.ts), read
 * back independently with `ss`, the kernel's own socket report. Root may go past
 * net.core.wmem_max; anyone else gets at most twice wmem_max, as socket(7) says.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { MemoryDevice } from '../../src/block/memory-device.js';
import { NbdServer } from '../../src/nbd/server.js';
import { UNIX_SEND_BUFFER_BYTES } from '../../src/unix-send-buffer.js';
import { requireTool, run, scratchDir } from '../../peers/tools.js';

/** What the kernel grants: SO_SNDBUFFORCE for root, else SO_SNDBUF capped at wmem_max (then doubled). */
function expectedSendBuffer(): number {
  if (process.getuid?.() === 0) return UNIX_SEND_BUFFER_BYTES;
  const wmemMax = Number(readFileSync('/proc/sys/net/core/wmem_max', 'utf8'));
  return Math.min(UNIX_SEND_BUFFER_BYTES, 2 * wmemMax);
}

/** The send buffer `ss` reports for the connected socket bound to `path` (the server's end). */
function sendBufferOf(path: string): number {
  const out = run(requireTool('ss', 'iproute2'), ['-x', '-m', '-O', '-H', 'src', path]).stdout;
  const lines = out.split('\n').filter((l) => l.includes('ESTAB'));
  assert.equal(lines.length, 1, `ss should show one connection on ${path}:\n${out}`);
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
    assert.equal(sendBufferOf(sock), expectedSendBuffer());
  } finally {
    client?.destroy();
    await server.close(1000);
    dir.remove();
  }
});
