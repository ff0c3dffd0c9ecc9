/**
 * What LUKS1 and LUKS2 unlocking share once a keyslot gave a candidate volume key: the key is
 * kept only if the header's digest accepts it, and wiped otherwise, also when checking throws
 * (an abort), so no rejected key material outlives the attempt.
 */

/** Whether `key` passes `verify`; a key that fails or throws is zeroed before this returns. */
export async function keepIfVerified(key: Buffer, verify: (key: Buffer) => Promise<boolean>): Promise<boolean> {
  let ok = false;
  try {
    ok = await verify(key);
    return ok;
  } finally {
    if (!ok) key.fill(0);
  }
}

/** "keyslot 1" or "keyslots 0,2": what an error says was tried. */
export function keyslotsTried(ids: readonly number[]): string {
  return ids.length === 1 ? `keyslot ${ids[0]}` : `keyslots ${ids.join(',')}`;
}
