/**
 * The hash functions LUKS headers name (LUKS1 hash-spec, LUKS2 AF and PBKDF2 hashes) under
 * cryptsetup's spelling: sha1, sha224, sha256, sha384, sha512, ripemd160, sha3-224 … sha3-512,
 * blake2b-512, blake2s-256. node:crypto (OpenSSL) computes them when it has them; ripemd160,
 * SHA-3 and BLAKE2 fall back to @noble/hashes because OpenSSL 3 may leave ripemd160 in its
 * legacy provider. A hash neither has (whirlpool, stribog) is an EBADHDR error naming it.
 * Spec: docs/formats.md (LUKS1 header).
 */
import { createHash, getHashes, pbkdf2 as nodePbkdf2 } from 'node:crypto';
import { promisify } from 'node:util';
import { ripemd160, sha1 } from '@noble/hashes/legacy.js';
import { sha224, sha256, sha384, sha512 } from '@noble/hashes/sha2.js';
import { sha3_224, sha3_256, sha3_384, sha3_512 } from '@noble/hashes/sha3.js';
import { blake2b, blake2s } from '@noble/hashes/blake2.js';
import { pbkdf2Async as noblePbkdf2 } from '@noble/hashes/pbkdf2.js';
import type { CHash } from '@noble/hashes/utils.js';
import { NbdcryptError } from '../errors.js';

const nodePbkdf2Async = promisify(nodePbkdf2);

type NobleHash = CHash;

/** cryptsetup name → [OpenSSL name, @noble/hashes function]. */
const HASHES: Record<string, [string, NobleHash]> = {
  sha1: ['sha1', sha1],
  sha224: ['sha224', sha224],
  sha256: ['sha256', sha256],
  sha384: ['sha384', sha384],
  sha512: ['sha512', sha512],
  ripemd160: ['ripemd160', ripemd160],
  'sha3-224': ['sha3-224', sha3_224],
  'sha3-256': ['sha3-256', sha3_256],
  'sha3-384': ['sha3-384', sha3_384],
  'sha3-512': ['sha3-512', sha3_512],
  'blake2b-512': ['blake2b512', blake2b],
  'blake2s-256': ['blake2s256', blake2s],
};

let nodeHashes: Set<string> | undefined;
let nobleOnly = false;

/** Computes every hash with @noble/hashes, as on an OpenSSL without them (for tests of the fallback). */
export function useNobleHashesOnly(on: boolean): void {
  nobleOnly = on;
}

function lookup(name: string): { node?: string; noble: NobleHash } {
  const e = HASHES[name];
  if (!e) throw new NbdcryptError('EBADHDR', `hash '${name}' is not supported; nbdcrypt knows ${Object.keys(HASHES).join(', ')}`);
  nodeHashes ??= new Set(getHashes());
  return { node: nobleOnly || !nodeHashes.has(e[0]) ? undefined : e[0], noble: e[1] };
}

/** True when `name` is a hash nbdcrypt can compute. */
export function isSupportedHash(name: string): boolean {
  return Object.hasOwn(HASHES, name);
}

/** Digest length in bytes; EBADHDR for an unknown hash. */
export function hashLength(name: string): number {
  return lookup(name).noble.outputLen;
}

/** hash(parts[0] ‖ parts[1] ‖ …). */
export function hashDigest(name: string, ...parts: Uint8Array[]): Buffer {
  const h = lookup(name);
  if (h.node) {
    const c = createHash(h.node);
    for (const p of parts) c.update(p);
    return c.digest();
  }
  const c = h.noble.create();
  for (const p of parts) c.update(p);
  const out = c.digest();
  const buf = Buffer.from(out);
  out.fill(0);
  return buf;
}

/** PBKDF2-HMAC(name) of `length` bytes; off the event loop on OpenSSL, in slices on @noble/hashes. */
export async function pbkdf2(name: string, password: Uint8Array, salt: Uint8Array, iterations: number, length: number): Promise<Buffer> {
  const h = lookup(name);
  if (h.node) return nodePbkdf2Async(password, salt, iterations, length, h.node);
  const out = await noblePbkdf2(h.noble, password, salt, { c: iterations, dkLen: length });
  const buf = Buffer.from(out);
  out.fill(0);
  return buf;
}
