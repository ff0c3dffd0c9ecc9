/**
 * Deliberate faults for the VM test, applied from the test side to the image nbdcrypt wrote,
 * before dm-crypt opens it, so that the test demonstrably fails:
 *   NBDCRYPT_TEST_FAULT=iv      re-encrypt the 4096-byte sector holding a file's first block
 *                               with the wrong IV rule (tweak = 4096-byte sector index instead
 *                               of the 512-byte sector number: the bug Ceph shipped);
 *   NBDCRYPT_TEST_FAULT=sector  flip 16 bytes of that block's ciphertext.
 * Either must make the dm-crypt checksum step fail. Nothing in src/ is touched. Rule and
 * layout: docs/formats.md (LUKS2 data segment), which also names the dm-crypt plain64 source.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { run } from '../../peers/tools.js';

export type Fault = 'iv' | 'sector';

export function faultFromEnv(): Fault | undefined {
  const v = process.env.NBDCRYPT_TEST_FAULT;
  if (v === undefined || v === '') return undefined;
  if (v === 'iv' || v === 'sector') return v;
  throw new Error(`NBDCRYPT_TEST_FAULT='${v}' is unknown: use iv or sector`);
}

interface Segment {
  offset: number;
  sectorSize: number;
  ivTweak: number;
}

function dataSegment(cryptsetup: string, image: string): Segment {
  const json = JSON.parse(run(cryptsetup, ['luksDump', '--dump-json-metadata', image]).stdout) as {
    segments: Record<string, { offset: string; sector_size: number; iv_tweak: string }>;
  };
  const s = json.segments['0'];
  return { offset: Number(s.offset), sectorSize: s.sector_size, ivTweak: Number(s.iv_tweak) };
}

function volumeKey(cryptsetup: string, image: string, keyFile: string): Buffer {
  const out = run(cryptsetup, ['luksDump', '--dump-volume-key', '--batch-mode', '--key-file', keyFile, image]).stdout;
  const hex = /MK dump:([\s0-9a-f]+)/.exec(out)?.[1].replace(/\s+/g, '');
  if (!hex || hex.length !== 128) throw new Error(`fault injection: could not read a 512-bit volume key of ${image}`);
  return Buffer.from(hex, 'hex');
}

function tweak(n: number): Buffer {
  const iv = Buffer.alloc(16);
  iv.writeBigUInt64LE(BigInt(n));
  return iv;
}

/** Applies `fault` to the 4096-byte filesystem block `block` (counted from the start of the
 * LUKS2 data segment) of `image`; returns a one-line description for the log. */
export function injectFault(fault: Fault, cryptsetup: string, image: string, keyFile: string, block: number): string {
  const seg = dataSegment(cryptsetup, image);
  const at = seg.offset + block * 4096;
  const fd = openSync(image, 'r+');
  try {
    const buf = Buffer.alloc(4096);
    readSync(fd, buf, 0, buf.length, at);
    if (fault === 'sector') {
      for (let i = 0; i < 16; i++) buf[100 + i] ^= 0x5a;
      writeSync(fd, buf, 0, buf.length, at);
      return `flipped 16 ciphertext bytes at byte ${at + 100} of ${image} (filesystem block ${block})`;
    }
    if (seg.sectorSize !== 4096) throw new Error('fault iv needs a 4096-byte-sector volume (for 512 both rules agree)');
    const key = volumeKey(cryptsetup, image, keyFile);
    const right = (block * 4096) / 512 + seg.ivTweak; // dm-crypt plain64: 512-byte units
    const wrong = block + seg.ivTweak / 8; // the bug: 4096-byte sector index
    const d = createDecipheriv('aes-256-xts', key, tweak(right));
    const plain = Buffer.concat([d.update(buf), d.final()]);
    const e = createCipheriv('aes-256-xts', key, tweak(wrong));
    const bad = Buffer.concat([e.update(plain), e.final()]);
    key.fill(0);
    writeSync(fd, bad, 0, bad.length, at);
    return `re-encrypted the sector at byte ${at} of ${image} with IV ${wrong} instead of ${right}`;
  } finally {
    closeSync(fd);
  }
}
