/**
 * Unlocking a LUKS2 volume: try the keyslots bound to the data segment in cryptsetup's order
 * (preferred, then normal; an ignored one only when named), derive each keyslot's key, merge
 * the AF stripes and check the candidate against the segment's digest. The KDF cost of every
 * digest is checked against kdf-cost-limits.ts before anything runs and a keyslot above the
 * bounds is passed over (refused if no other keyslot opens); with an AbortSignal each
 * derivation runs where the signal can stop it (kdf.ts).
 * Spec: docs/formats.md (LUKS2 keyslots).
 */
import type { BlockDevice } from '../block/block-device.js';
import { NbdcryptError } from '../errors.js';
import { keepIfVerified, keyslotsTried } from './candidate-key.js';
import { checkKdfCost } from './kdf-cost-limits.js';
import { keyslotCipherError, openKeyslot, type KeyslotEngines } from './luks2-keyslot.js';
import { verifyDigest } from './luks2-digest.js';
import type { Keyslot, Metadata, Segment } from './luks2-metadata.js';
import { dataSegment, type LoadedHeader } from './luks2-volume-state.js';

export interface UnlockOptions {
  /** Try only this keyslot. */
  keySlot?: number;
  /** Stops a key derivation in progress; the unlock then rejects with EINTR. */
  signal?: AbortSignal;
  /** Run key derivations whose cost is above the bounds of kdf-cost-limits.ts. */
  allowCostlyKdf?: boolean;
  /** argon2 and keyslot XTS implementations (the CLI's environment switches). */
  engines?: KeyslotEngines;
}

export function digestFor(meta: Metadata, slot: number): Metadata['digests'][number] | undefined {
  return meta.digests.find((d) => d.keyslots.includes(slot));
}

/** Slots to try in cryptsetup's order: preferred (priority 2) first, then normal; ignored (0) only when named. */
function candidateSlots(meta: Metadata, segment: Segment, keySlot?: number): Keyslot[] {
  if (keySlot !== undefined) {
    const ks = meta.keyslots.find((k) => k.id === keySlot);
    if (!ks) throw new NbdcryptError('ENOKEY', `keyslot ${keySlot} is not in use; no data was changed`);
    return [ks];
  }
  const bound = meta.keyslots.filter((k) => digestFor(meta, k.id)?.segments.includes(segment.id));
  return [...bound.filter((k) => k.priority === 2), ...bound.filter((k) => k.priority === 1)];
}

/**
 * Returns the volume key and the keyslot that opened it. ENOKEY when no keyslot opens with
 * `passphrase` (wrong passphrase, or damaged key material: the two look the same), ENOTSUP
 * when no keyslot is of a kind nbdcrypt can open (EBADHDR when it is their area cipher), EBADHDR for an unreasonable KDF cost (a
 * digest's, or a keyslot's when no reasonable keyslot opened).
 */
export async function unlockVolumeKey(dev: BlockDevice, l: LoadedHeader, passphrase: Buffer, opts: UnlockOptions = {}): Promise<{ key: Buffer; slot: number }> {
  const seg = dataSegment(l.meta);
  const slots = candidateSlots(l.meta, seg, opts.keySlot);
  const allow = opts.allowCostlyKdf ?? false;
  for (const ks of slots) {
    const d = digestFor(l.meta, ks.id);
    if (d) checkKdfCost({ type: 'pbkdf2', hash: d.hash, iterations: d.iterations, salt: d.salt }, `digest ${d.id}`, allow);
  }
  let unsupported: NbdcryptError | undefined;
  let unsupportedCount = 0;
  // A keyslot above the cost bounds is passed over; if no other one opens, that is the error.
  let costly: NbdcryptError | undefined;
  for (const ks of slots) {
    const d = digestFor(l.meta, ks.id);
    if (!d) continue;
    const cipherError = keyslotCipherError(ks);
    if (cipherError) {
      unsupported = cipherError;
      unsupportedCount++;
      continue;
    }
    try {
      checkKdfCost(ks.kdf, `keyslot ${ks.id}`, allow);
    } catch (e) {
      costly ??= e as NbdcryptError;
      continue;
    }
    let key: Buffer;
    try {
      key = await openKeyslot(dev, ks, passphrase, opts.signal, opts.engines);
    } catch (e) {
      if (e instanceof NbdcryptError && e.code === 'ENOTSUP') {
        unsupported = e;
        unsupportedCount++;
        continue;
      }
      throw e;
    }
    if (await keepIfVerified(key, (k) => verifyDigest(d, k, opts.signal))) return { key, slot: ks.id };
  }
  if (costly) throw costly;
  if (slots.length === 0) throw new NbdcryptError('ENOKEY', 'no usable keyslot in this LUKS2 header; restore a header backup; no data was changed');
  if (unsupported && unsupportedCount === slots.length) throw new NbdcryptError(unsupported.code, `${unsupported.message}; no data was changed`);
  const tried = keyslotsTried(slots.map((k) => k.id));
  throw new NbdcryptError(
    'ENOKEY',
    `wrong passphrase for ${tried}${unsupported ? ` (${unsupported.message})` : ''}; no data was changed (if the passphrase is right, the key material of ${tried} may be damaged: restore a header backup)`,
  );
}
