/**
 * The data cipher and volume key a new volume gets (LUKS1 and LUKS2 format alike): the spec
 * must be written as cryptsetup writes it, the key size must be one the spec takes, and a
 * random (or given) XTS key must not have two equal halves (OpenSSL refuses those).
 * Spec: docs/formats.md (LUKS2 ciphers, LUKS1 header).
 */
import { randomBytes } from 'node:crypto';
import { checkKeySize, parseCipherSpec, type CipherSpec } from '../crypt/cipher-spec.js';
import { NbdcryptError } from '../errors.js';

function usage(msg: string): NbdcryptError {
  return new NbdcryptError('EUSAGE', msg);
}

/** Parses `cipher` and checks `keyBits` against it; EUSAGE naming what is wrong. */
export function formatCipher(cipher: string, keyBits: number): { spec: CipherSpec; keyBytes: number } {
  const spec = parseCipherSpec(cipher);
  if (spec.name !== cipher) throw usage(`cipher '${cipher}': write it as cryptsetup does, '${spec.name}'`);
  if (!Number.isInteger(keyBits) || keyBits % 8 !== 0) throw usage(`--key-size ${keyBits} must be a whole number of bytes in bits`);
  try {
    checkKeySize(spec, keyBits / 8);
  } catch (e) {
    throw usage((e as Error).message);
  }
  return { spec, keyBytes: keyBits / 8 };
}

/** A copy of `given` (checked) or a fresh random key of `keyBytes` for `spec`; the caller wipes it. */
export function newVolumeKey(spec: CipherSpec, keyBytes: number, given?: Buffer): Buffer {
  const half = keyBytes / 2;
  const badXts = (k: Buffer) => spec.mode === 'xts' && k.subarray(0, half).equals(k.subarray(half));
  if (given) {
    if (given.length !== keyBytes) throw usage(`the volume key must be ${keyBytes} bytes (${spec.name}, ${keyBytes * 8} bits)`);
    if (badXts(given)) throw usage('the two halves of an XTS volume key must differ; use a random key');
    return Buffer.from(given);
  }
  let key = randomBytes(keyBytes);
  while (badXts(key)) key = randomBytes(keyBytes);
  return key;
}
