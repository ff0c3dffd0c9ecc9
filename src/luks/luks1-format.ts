/**
 * Creating a LUKS1 volume the way `cryptsetup luksFormat --type luks1` lays it out: the
 * 592-byte header, 8 keyslot areas from 4096 bytes on (each rounded up to 4096 bytes), the
 * payload at the end of keyslot 7 rounded up to 1 MiB (or where --offset puts it), one keyslot
 * (0) for the passphrase, PBKDF2 with the chosen hash (default sha256, cryptsetup's), the
 * volume key digest's iterations benchmarked to 125 ms (1000 with forced iterations, as
 * cryptsetup). The header area is zeroed and the keyslot areas filled with random bytes first.
 * Spec: docs/formats.md (LUKS1 header, LUKS1 keyslots).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { checkWritable, type BlockDevice } from '../block/block-device.js';
import { DEFAULT_CIPHER, parseLuks1Cipher } from '../crypt/cipher-spec.js';
import { NbdcryptError } from '../errors.js';
import { benchmarkPbkdf2, PBKDF2_MIN_ITERATIONS, type KdfOptions } from './kdf-benchmark.js';
import { isSupportedHash } from './hash-functions.js';
import { formatCipher, newVolumeKey } from './format-cipher.js';
import { afSectors, keyslotLayout, LUKS1_STRIPES, type Luks1Header } from './luks1-header.js';
import { luks1Iterations } from './luks1-key-operations.js';
import { createLuks1Digest, storeLuks1Keyslot } from './luks1-keyslot.js';
import { describeLuks1, writeLuks1Header } from './luks1-volume.js';
import type { OpenedVolume } from './luks2-volume-state.js';

export interface Luks1FormatOptions extends KdfOptions {
  /** Data cipher in cryptsetup's notation; default aes-xts-plain64. */
  cipher?: string;
  /** Volume key bits; default 256 (cryptsetup's LUKS1 default), 512 for XTS is common. */
  keyBits?: number;
  /** hash-spec; default sha256. */
  hash?: string;
  /** Payload offset in 512-byte sectors (a multiple of 8); default: keyslots end rounded up to 1 MiB. */
  offsetSectors?: number;
  uuid?: string;
  volumeKey?: Buffer;
}

const MIB_SECTORS = 2048;
const DIGEST_TARGET_MS = 125;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function usage(msg: string): NbdcryptError {
  return new NbdcryptError('EUSAGE', msg);
}

/** The header fields a format writes, before the key digest and keyslot 0 are filled in. */
function plan(dev: BlockDevice, o: Luks1FormatOptions): Omit<Luks1Header, 'mkDigest' | 'mkDigestSalt' | 'mkDigestIterations'> {
  const keyBits = o.keyBits ?? 256;
  const { spec, keyBytes } = formatCipher(o.cipher ?? DEFAULT_CIPHER, keyBits);
  const hash = (o.hash ?? 'sha256').toLowerCase();
  if (!isSupportedHash(hash)) throw usage(`--hash ${hash} is not supported; use sha1, sha256, sha512 or ripemd160`);
  const uuid = (o.uuid ?? randomUUID()).toLowerCase();
  if (!UUID_RE.test(uuid)) throw usage(`UUID '${o.uuid}' is not of the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`);
  const layout = keyslotLayout(keyBytes);
  let payloadOffset = Math.ceil(layout.end / MIB_SECTORS) * MIB_SECTORS;
  if (o.offsetSectors !== undefined) {
    if (!Number.isInteger(o.offsetSectors) || o.offsetSectors % 8 !== 0 || o.offsetSectors < layout.end || o.offsetSectors > 0xffffffff) {
      throw usage(`--offset ${o.offsetSectors} must be a multiple of 8 sectors (4096 bytes) and at least ${layout.end}, the end of the LUKS1 keyslot areas`);
    }
    payloadOffset = o.offsetSectors;
  }
  if (dev.size < payloadOffset * 512 + 512) throw usage(`the device (${dev.size} bytes) is too small: LUKS1 with a ${keyBits}-bit key needs ${payloadOffset * 512} bytes of header plus data`);
  const keyslots = layout.offsets.map((keyMaterialOffset, id) => ({ id, active: false, iterations: 0, salt: Buffer.alloc(32), keyMaterialOffset, stripes: LUKS1_STRIPES }));
  const [cipherName, ...mode] = spec.name.split('-');
  return { cipherName: cipherName!, cipherMode: mode.join('-'), hashSpec: hash, payloadOffset, keyBytes, uuid, keyslots };
}

/** Creates a LUKS1 volume with keyslot 0 for `passphrase`. The caller checked that the device may be overwritten. */
export async function formatLuks1Volume(dev: BlockDevice, passphrase: Buffer, o: Luks1FormatOptions = {}): Promise<OpenedVolume> {
  checkWritable(dev, 'format');
  const fields = plan(dev, o);
  const key = newVolumeKey(parseLuks1Cipher(fields.cipherName, fields.cipherMode), fields.keyBytes, o.volumeKey);
  const slotIterations = await luks1Iterations(fields.hashSpec, fields.keyBytes, o);
  const digestIterations = o.pbkdfForceIterations !== undefined ? PBKDF2_MIN_ITERATIONS : Math.max(PBKDF2_MIN_ITERATIONS, await benchmarkPbkdf2(fields.hashSpec, DIGEST_TARGET_MS, fields.keyBytes));
  const h: Luks1Header = { ...fields, ...(await createLuks1Digest(fields.hashSpec, key, digestIterations)) };

  // Zeroes over the header area up to the payload, random bytes over every keyslot area.
  for (let off = 0; off < h.payloadOffset * 512; off += 1 << 20) await dev.write(off, Buffer.alloc(Math.min(1 << 20, h.payloadOffset * 512 - off)));
  for (const ks of h.keyslots) await dev.write(ks.keyMaterialOffset * 512, randomBytes(afSectors(h.keyBytes) * 512));
  try {
    await storeLuks1Keyslot(dev, h, h.keyslots[0]!, key, passphrase, slotIterations);
    await writeLuks1Header(dev, h);
    return describeLuks1(h, dev, key, 0);
  } catch (e) {
    key.fill(0);
    throw e;
  }
}
