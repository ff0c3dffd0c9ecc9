/**
 * Upper bounds on the KDF cost a header may ask for before nbdcrypt runs it. The cost comes
 * from the header, which anyone who can write the remote export controls; without a bound a
 * keyslot with argon2 `time` 4294967295 keeps the CPU busy for days before the passphrase is
 * even checked. cryptsetup's own limits do not bound this: it accepts argon2 time up to
 * 2^32 − 1, memory 32 KiB … 4 GiB (4194304 KiB) and 1 … 4 threads, and PBKDF2 iterations up
 * to 2^32 − 1. What it writes is far smaller: its benchmark aims at 2 s (`--iter-time`), with
 * memory up to 1 GiB, i.e. 4 to about 10 passes over 1 GiB; the digest aims at 125 ms.
 *
 * The bounds, about ten times the heaviest that a default format writes on fast hardware:
 * - argon2: time × memory ≤ 2^26 KiB, i.e. 64 GiB of memory passes (16 passes over
 *   cryptsetup's 4 GiB maximum, 64 over its 1 GiB default). Memory alone is already limited
 *   to 4 GiB by metadata validation (cryptsetup's maximum).
 * - PBKDF2 (keyslot or digest): 2^26 iterations (cryptsetup's 2 s benchmark writes 1–5 million
 *   for sha256 on current CPUs; its digest 125 ms, a few hundred thousand).
 * A header above a bound is refused with a message that it asks for an unreasonable cost;
 * `allowCostlyKdf` (the CLI's --allow-costly-kdf) runs it anyway, still interruptible.
 */
import { NbdcryptError } from '../errors.js';
import type { Kdf } from './luks2-metadata.js';

/** argon2 time × memory (KiB) a header may ask for: 64 GiB of memory passes. */
export const ARGON2_MAX_WORK_KIB = 2 ** 26;
/** PBKDF2 iterations a header may ask for, in a keyslot or a digest. */
export const PBKDF2_MAX_ITERATIONS = 2 ** 26;

/** Human-readable cost, for messages. */
export function describeKdfCost(kdf: Kdf): string {
  return kdf.type === 'pbkdf2' ? `pbkdf2-${kdf.hash} with ${kdf.iterations} iterations` : `${kdf.type} with time ${kdf.time} × memory ${kdf.memory} KiB`;
}

/** True when the derivation stays within the bounds above. */
export function kdfCostIsReasonable(kdf: Kdf): boolean {
  return kdf.type === 'pbkdf2' ? kdf.iterations <= PBKDF2_MAX_ITERATIONS : kdf.time * kdf.memory <= ARGON2_MAX_WORK_KIB;
}

/** Throws EBADHDR naming `what` (e.g. "keyslot 0") unless the cost is within the bounds or allowed. */
export function checkKdfCost(kdf: Kdf, what: string, allowCostly: boolean): void {
  if (allowCostly || kdfCostIsReasonable(kdf)) return;
  const limit = kdf.type === 'pbkdf2' ? `${PBKDF2_MAX_ITERATIONS} iterations` : `time × memory ${ARGON2_MAX_WORK_KIB} KiB`;
  throw new NbdcryptError(
    'EBADHDR',
    `${what} asks for an unreasonable key derivation cost (${describeKdfCost(kdf)}; nbdcrypt's limit is ${limit}, far above what cryptsetup or nbdcrypt format write); the header may be damaged or hostile — if you set this cost yourself, add --allow-costly-kdf; no data was changed`,
  );
}
