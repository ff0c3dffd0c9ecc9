/**
 * LUKS2 "pbkdf2" digest: proves a candidate volume key is the right one without storing it,
 * digest = PBKDF2-HMAC(hash, password = volume key, salt, iterations, len(digest)).
 * Iterations are benchmarked to ~125 ms like cryptsetup (LUKS_MKD_ITERATIONS_MS), minimum 1000.
 * Spec: docs/formats.md (LUKS2 keyslots).
 */
import { getHashes, pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { NbdcryptError } from '../errors.js';
import type { Digest } from './luks2-metadata.js';
import { benchmarkPbkdf2 } from './kdf-benchmark.js';
import { deriveKeyAbortable } from './kdf.js';

const pbkdf2Async = promisify(pbkdf2);

export const DIGEST_MIN_ITERATIONS = 1000;
const DIGEST_TARGET_MS = 125;

export async function computeDigest(key: Buffer, salt: Buffer, hash: string, iterations: number, length: number): Promise<Buffer> {
  return pbkdf2Async(key, salt, iterations, length, hash);
}

/**
 * True if `key` matches the digest (constant-time compare). The iteration count comes from
 * the header: with `signal` the PBKDF2 runs where the signal can stop it (kdf.ts).
 */
export async function verifyDigest(d: Digest, key: Buffer, signal?: AbortSignal): Promise<boolean> {
  if (d.type !== 'pbkdf2' || !getHashes().includes(d.hash)) return false;
  let got: Buffer;
  try {
    got = await deriveKeyAbortable({ type: 'pbkdf2', hash: d.hash, iterations: d.iterations, salt: d.salt }, key, d.digest.length, signal);
  } catch (e) {
    if (e instanceof NbdcryptError) throw e;
    // Node's PBKDF2 stops at 2^31 − 1 iterations; LUKS2 allows up to 2^32 − 1.
    throw new NbdcryptError('ENOTSUP', `digest ${d.id}: pbkdf2-${d.hash} with ${d.iterations} iterations failed here (${e instanceof Error ? e.message : String(e)})`);
  }
  const ok = got.length === d.digest.length && timingSafeEqual(got, d.digest);
  got.fill(0);
  return ok;
}

/** Iterations for ~125 ms of PBKDF2-SHA256 here, measured as cryptsetup does (at least 1000). */
export async function benchmarkDigestIterations(keySize: number): Promise<number> {
  return Math.max(DIGEST_MIN_ITERATIONS, await benchmarkPbkdf2('sha256', DIGEST_TARGET_MS, keySize));
}

/** A new digest of `key` (32-byte salt, sha256, digest length = HMAC size, as cryptsetup writes). */
export async function createDigest(key: Buffer, iterations: number): Promise<{ salt: Buffer; digest: Buffer; iterations: number }> {
  const salt = randomBytes(32);
  const digest = await computeDigest(key, salt, 'sha256', iterations, 32);
  return { salt, digest, iterations };
}
