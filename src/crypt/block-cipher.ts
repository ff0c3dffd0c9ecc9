/**
 * The one-block interface the portable sector modes (sector-modes.ts) run over: a keyed
 * 128-bit block cipher that ciphers 16 bytes in place. Implemented by twofish.ts, serpent.ts
 * and, for the reference engine, @noble/ciphers' raw AES (aes-block.ts).
 */
export interface BlockCipher {
  /** Ciphers buf[off .. off+16) in place. */
  encryptBlock(buf: Uint8Array, off: number): void;
  decryptBlock(buf: Uint8Array, off: number): void;
  /** Zeroes the key schedule; the object must not be used afterwards. */
  wipe(): void;
}

export function readLE32(b: Uint8Array, off: number): number {
  return (b[off]! | (b[off + 1]! << 8) | (b[off + 2]! << 16) | (b[off + 3]! << 24)) >>> 0;
}

export function writeLE32(b: Uint8Array, off: number, v: number): void {
  b[off] = v;
  b[off + 1] = v >>> 8;
  b[off + 2] = v >>> 16;
  b[off + 3] = v >>> 24;
}
