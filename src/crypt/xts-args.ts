/**
 * Argument checks and the tweak rule shared by every XTS engine (aes-xts-plain64 as LUKS2 uses
 * it; docs/formats.md, LUKS2 data segment): unit i of a buffer starting at 512-byte sector
 * `firstSector` has tweak LE64(firstSector + i·sectorSize/512) ‖ 8 zero bytes. Checks follow
 * noble's style: a wrong type is a TypeError, a wrong value a RangeError, and the message names
 * the argument.
 * Spec: IEEE Std 1619-2018 §5.
 */

/** Bytes in an XTS-AES-256 key: two AES-256 keys (data key ‖ tweak key). */
export const XTS_KEY_BYTES = 64;
export const MIN_SECTOR_SIZE = 512;
export const MAX_SECTOR_SIZE = 4096;

export function checkKey(key: unknown): asserts key is Buffer {
  if (!(key instanceof Uint8Array)) throw new TypeError('key must be a Buffer');
  if (key.length !== XTS_KEY_BYTES) throw new RangeError(`key must be ${XTS_KEY_BYTES} bytes for aes-xts-plain64 (AES-256-XTS), got ${key.length}`);
  // OpenSSL refuses XTS keys whose halves are equal ("xts duplicated keys", a FIPS rule
  // because it makes XTS malleable); refuse it the same way in every engine.
  if (Buffer.from(key.buffer, key.byteOffset, 32).equals(Buffer.from(key.buffer, key.byteOffset + 32, 32))) {
    throw new RangeError('key: the two 32-byte halves of an XTS key must differ (OpenSSL rejects duplicated XTS keys); use a random key');
  }
}

export function checkSectorSize(sectorSize: unknown): asserts sectorSize is number {
  if (typeof sectorSize !== 'number') throw new TypeError('sectorSize must be a number');
  if (!Number.isInteger(sectorSize) || sectorSize < MIN_SECTOR_SIZE || sectorSize > MAX_SECTOR_SIZE || (sectorSize & (sectorSize - 1)) !== 0) {
    throw new RangeError(`sectorSize must be a power of two from ${MIN_SECTOR_SIZE} to ${MAX_SECTOR_SIZE}, got ${sectorSize}`);
  }
}

/** Validates one encrypt/decrypt call; afterwards every tweak of the buffer is a safe integer. */
export function checkCall(buf: unknown, firstSector: unknown, sectorSize: unknown): asserts buf is Buffer {
  if (!(buf instanceof Uint8Array)) throw new TypeError('buf must be a Buffer');
  if (typeof firstSector !== 'number') throw new TypeError('firstSector must be a number');
  checkSectorSize(sectorSize);
  if (!Number.isSafeInteger(firstSector) || firstSector < 0) throw new RangeError(`firstSector must be a non-negative safe integer, got ${firstSector}`);
  if (buf.length % sectorSize !== 0) throw new RangeError(`buf length ${buf.length} must be a multiple of sectorSize ${sectorSize}`);
  const last = firstSector + (buf.length / sectorSize) * (sectorSize / 512);
  if (!Number.isSafeInteger(last)) throw new RangeError(`firstSector ${firstSector}: the buffer's sector numbers pass 2^53`);
}

/** Writes the 16-byte tweak of 512-byte sector number `sector` into `iv`. */
export function writeTweak(iv: Buffer, sector: number): void {
  iv.writeUInt32LE(sector % 0x1_0000_0000, 0);
  iv.writeUInt32LE(Math.floor(sector / 0x1_0000_0000), 4);
  iv.fill(0, 8, 16);
}

/** T ← T·α in GF(2^128), little-endian (IEEE 1619 §5.2): the XTS tweak of the next block. */
export function mulAlpha(t: Uint8Array): void {
  let carry = 0;
  for (let i = 0; i < 16; i++) {
    const b = t[i]!;
    t[i] = ((b << 1) | carry) & 0xff;
    carry = b >>> 7;
  }
  if (carry) t[0] = t[0]! ^ 0x87;
}

/** Yields to the event loop (used by the JS engines' async variants between slices). */
export function yieldToLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
