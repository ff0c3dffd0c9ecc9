/**
 * What encryption costs the NBD front end: the same in-process NbdServer over a
 * MemoryDevice, served plain and through EncryptedDevice (native engine, 4096-byte sectors),
 * loaded by nbdcopy (--connections 4 --requests 64) copying random data in and back out
 * over a unix socket. Rounds alternate the two stacks; each cell keeps its best round.
 * Run: npm run build && node dist/bench/encryption-overhead.js [--size 1G] [--rounds 3]
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream, rmSync } from 'node:fs';
import { join } from 'node:path';
import { BufferPool } from '../src/block/buffer-pool.js';
import { MemoryDevice } from '../src/block/memory-device.js';
import { parseSize } from '../src/size.js';
import { EncryptedDevice } from '../src/crypt/encrypted-device.js';
import { defaultEngine } from '../src/crypt/xts-cipher.js';
import { NbdServer } from '../src/nbd/server.js';
import { nbdcopyAsync } from '../peers/nbdcopy.js';
import { scratchDir } from '../peers/tools.js';
import type { BlockDevice } from '../src/block/block-device.js';
import { benchArgs } from './bench-args.js';

const values = benchArgs(
  'Usage: node dist/bench/encryption-overhead.js [--size 1G] [--rounds 3]\n  nbdcopy in and out of an in-process NBD server, plain and encrypted; prints both and the ratio.',
  { size: { type: 'string', default: '1G' }, rounds: { type: 'string', default: '3' } },
);
const size = parseSize(values.size ?? '1G', '--size');
const rounds = Number(values.rounds);
const dir = scratchDir('nbdcrypt-bench-');
const shm = scratchDir('nbdcrypt-bench-src-');
/** One pool for every layer, as serve has (cli/serve-runtime.ts). */
const buffers = new BufferPool(16 * 1024 * 1024);

async function writeRandomFile(path: string, bytes: number): Promise<void> {
  const out = createWriteStream(path);
  for (let done = 0; done < bytes; done += 1 << 20) {
    if (!out.write(randomBytes(Math.min(1 << 20, bytes - done)))) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((r, j) => out.end((e?: Error | null) => (e ? j(e) : r())));
}

async function measure(label: string, device: BlockDevice, src: string): Promise<{ label: string; write: number; read: number }> {
  const server = new NbdServer({ exports: [{ name: 'disk', device }], io: { buffers, noteTransientBytes: () => undefined } });
  const sock = join(dir.path, `${label.replace(/\W/g, '')}.sock`);
  await server.listen(`unix:${sock}`);
  const uri = `nbd+unix:///disk?socket=${sock}`;
  const mb = size / 1e6;
  const write = mb / (await nbdcopyAsync(src, uri));
  const read = mb / (await nbdcopyAsync(uri, 'null:'));
  await server.close();
  await device.close();
  return { label, write, read };
}

const src = join(shm.path, 'random.img');
await writeRandomFile(src, size);
const best = new Map<string, { write: number; read: number }>();
try {
  for (let r = 0; r < rounds; r++) {
    for (const enc of [false, true]) {
      const mem = new MemoryDevice(size, { buffers });
      const device = enc ? new EncryptedDevice(mem, { key: randomBytes(64), dataOffset: 0, sectorSize: 4096, buffers }) : mem;
      const row = await measure(enc ? `encrypted (${defaultEngine()})` : 'plain', device, src);
      const b = best.get(row.label) ?? { write: 0, read: 0 };
      best.set(row.label, { write: Math.max(b.write, row.write), read: Math.max(b.read, row.read) });
    }
  }
} finally {
  dir.remove();
  shm.remove();
}
const plain = best.get('plain')!;
console.log(`\nnbdcopy of ${values.size} (4 connections, 64 requests), in-process NbdServer over MemoryDevice, best of ${rounds}\n`);
console.log('| stack | write MB/s | read MB/s | write ratio | read ratio |');
console.log('|---|---:|---:|---:|---:|');
for (const [label, v] of best) {
  console.log(`| ${label} | ${v.write.toFixed(0)} | ${v.read.toFixed(0)} | ${(v.write / plain.write).toFixed(2)} | ${(v.read / plain.read).toFixed(2)} |`);
}
