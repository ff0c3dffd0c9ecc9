/**
 * cryptsetup 2.6 as the LUKS2 oracle, driven without root or device-mapper
 * (docs/formats.md, Checking with cryptsetup): luksFormat/luksAddKey/... with cheap KDF
 * parameters, luksDump (text, JSON, volume key), `open --test-passphrase` to see which keyslot
 * a passphrase opens, and the userspace `reencrypt --encrypt/--decrypt` data path with a
 * detached header. Passphrases go through --key-file (stdin or a scratch file), never the
 * command line.
 */
import { writeFileSync, rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireTool, run } from './tools.js';

export type Pass = string | Buffer;

export function cryptsetup(): string {
  return requireTool('cryptsetup', 'cryptsetup-bin');
}

/** Fast, deterministic KDF flags for tests (argon2id 32 MiB / t=4, or pbkdf2 1000). */
export function fastPbkdf(pbkdf: 'argon2id' | 'pbkdf2' = 'argon2id'): string[] {
  return pbkdf === 'pbkdf2'
    ? ['--pbkdf', 'pbkdf2', '--pbkdf-force-iterations', '1000']
    : ['--pbkdf', 'argon2id', '--pbkdf-memory', '32768', '--pbkdf-force-iterations', '4', '--pbkdf-parallel', '2'];
}

function withKeyFile<T>(pass: Pass, fn: (path: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'nbdcrypt-key-'));
  const path = join(dir, 'key');
  writeFileSync(path, pass, { mode: 0o600 });
  try {
    return fn(path);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function cs(args: string[], input?: Pass, allowFail = false): { stdout: string; stderr: string; status: number | null } {
  return run(cryptsetup(), args, { input, allowFail, timeoutMs: 120_000 });
}

export interface FormatOpts {
  pbkdf?: 'argon2id' | 'pbkdf2';
  sectorSize?: 512 | 4096;
  label?: string;
  keySlot?: number;
  /** Data (and keyslot area) cipher, e.g. "aes-cbc-plain64"; cryptsetup's default when absent. */
  cipher?: string;
  keyBits?: number;
}

export function luksFormat(img: string, pass: Pass, o: FormatOpts = {}): void {
  const args = ['luksFormat', '--type', 'luks2', '--batch-mode', ...fastPbkdf(o.pbkdf), '--key-file', '-'];
  if (o.cipher !== undefined) args.push('--cipher', o.cipher);
  if (o.keyBits !== undefined) args.push('--key-size', String(o.keyBits));
  if (o.sectorSize) args.push('--sector-size', String(o.sectorSize));
  if (o.label !== undefined) args.push('--label', o.label);
  if (o.keySlot !== undefined) args.push('--key-slot', String(o.keySlot));
  cs([...args, img], pass);
}

export interface Luks1FormatOpts {
  /** e.g. "aes-xts-plain64", "aes-cbc-essiv:sha256". */
  cipher: string;
  keyBits: number;
  /** hash-spec: PBKDF2 and AF hash (sha1, sha256, sha512, ripemd160, ...). */
  hash: string;
  /** Payload offset in 512-byte sectors (default: cryptsetup's 1 MiB alignment). */
  offsetSectors?: number;
}

/** luksFormat --type luks1 with 1000 PBKDF2 iterations (keyslot 0). */
export function luksFormat1(img: string, pass: Pass, o: Luks1FormatOpts): void {
  const args = ['luksFormat', '--type', 'luks1', '--batch-mode', ...fastPbkdf('pbkdf2'), '--cipher', o.cipher, '--key-size', String(o.keyBits), '--hash', o.hash, '--key-file', '-'];
  if (o.offsetSectors !== undefined) args.push('--offset', String(o.offsetSectors));
  cs([...args, img], pass);
}

export function luksAddKey(img: string, existing: Pass, newPass: Pass, o: { pbkdf?: 'argon2id' | 'pbkdf2'; keySlot?: number } = {}): void {
  withKeyFile(newPass, (newFile) => {
    const args = ['luksAddKey', '--batch-mode', ...fastPbkdf(o.pbkdf), '--key-file', '-'];
    if (o.keySlot !== undefined) args.push('--key-slot', String(o.keySlot));
    cs([...args, img, newFile], existing);
  });
}

export function luksRemoveKey(img: string, pass: Pass): void {
  cs(['luksRemoveKey', '--batch-mode', '--key-file', '-', img], pass);
}

export function luksKillSlot(img: string, slot: number, authorising: Pass): void {
  cs(['luksKillSlot', '--batch-mode', '--key-file', '-', img, String(slot)], authorising);
}

export function luksChangeKey(img: string, oldPass: Pass, newPass: Pass, o: { pbkdf?: 'argon2id' | 'pbkdf2' } = {}): void {
  withKeyFile(newPass, (newFile) => cs(['luksChangeKey', '--batch-mode', ...fastPbkdf(o.pbkdf), '--key-file', '-', img, newFile], oldPass));
}

export function luksDump(img: string): string {
  return cs(['luksDump', img]).stdout;
}

export function luksDumpJson(img: string): Record<string, unknown> {
  return JSON.parse(cs(['luksDump', '--dump-json-metadata', img]).stdout) as Record<string, unknown>;
}

/** The full `luksDump --dump-volume-key` text. */
export function luksDumpVolumeKeyText(img: string, pass: Pass): string {
  return cs(['luksDump', '--dump-volume-key', '--batch-mode', '--key-file', '-', img], pass).stdout;
}

/** The volume key parsed from the `MK dump:` lines. */
export function volumeKey(img: string, pass: Pass): Buffer {
  return parseMkDump(luksDumpVolumeKeyText(img, pass));
}

export function parseMkDump(text: string): Buffer {
  const at = text.indexOf('MK dump:');
  if (at < 0) throw new Error(`no 'MK dump:' line in:\n${text}`);
  const hex = text
    .slice(at + 'MK dump:'.length)
    .split('\n')
    .filter((l, i) => i === 0 || l.startsWith('\t\t'))
    .join(' ')
    .replace(/\s+/g, '');
  return Buffer.from(hex, 'hex');
}

/** The keyslot `pass` opens according to cryptsetup, or null when it opens none. */
export function testPassphrase(img: string, pass: Pass, o: { header?: string; keySlot?: number } = {}): number | null {
  const args = ['open', '--test-passphrase', '-v', '--key-file', '-'];
  if (o.header) args.push('--header', o.header);
  if (o.keySlot !== undefined) args.push('--key-slot', String(o.keySlot));
  const r = cs([...args, img], pass, true);
  const m = /Key slot (\d+) unlocked/.exec(r.stdout + r.stderr);
  if (r.status === 0 && m) return Number(m[1]);
  if (r.status === 2) return null; // "no permission or bad passphrase"
  throw new Error(`cryptsetup open --test-passphrase failed unexpectedly (status ${r.status}): ${r.stderr.trim()}`);
}

/** Encrypts DATA in place in userspace, creating the detached header HDR (data offset 0). */
export function reencryptEncrypt(data: string, header: string, pass: Pass, o: { sectorSize?: 512 | 4096; pbkdf?: 'argon2id' | 'pbkdf2' } = {}): void {
  cs(
    ['reencrypt', '--encrypt', '--type', 'luks2', '--header', header, '--sector-size', String(o.sectorSize ?? 4096), '--force-offline-reencrypt', '--batch-mode', ...fastPbkdf(o.pbkdf), '--key-file', '-', data],
    pass,
  );
}

/** Decrypts DATA in place in userspace with the detached header HDR (its data offset must be 0). */
export function reencryptDecrypt(data: string, header: string, pass: Pass): void {
  cs(['reencrypt', '--decrypt', '--header', header, '--force-offline-reencrypt', '--batch-mode', '--key-file', '-', data], pass);
}

export function luksHeaderBackup(img: string, file: string): void {
  cs(['luksHeaderBackup', '--batch-mode', img, '--header-backup-file', file]);
}

export function luksHeaderRestore(img: string, file: string): void {
  cs(['luksHeaderRestore', '--batch-mode', img, '--header-backup-file', file]);
}
