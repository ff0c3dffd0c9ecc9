/**
 * Creating a LUKS2 volume the way `cryptsetup luksFormat --type luks2` lays it out by default
 * (16 KiB metadata copies, keyslots area up to 16 MiB, data at 16 MiB or 0 for a detached
 * header), with one keyslot (0) for the passphrase and a fresh random volume key for the data
 * cipher chosen (default aes-xts-plain64, 512 bits; the keyslot area uses it too); and the
 * check that refuses to format over something that is not empty.
 * Spec: docs/formats.md (LUKS2 layout).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { checkWritable, type BlockDevice } from '../block/block-device.js';
import { DEFAULT_CIPHER, parseCipherSpec } from '../crypt/cipher-spec.js';
import { NbdcryptError } from '../errors.js';
import { formatCipher, newVolumeKey } from './format-cipher.js';
import { chooseKdf, kdfChoiceOf, type KdfOptions } from './kdf-benchmark.js';
import { createDigest, benchmarkDigestIterations, DIGEST_MIN_ITERATIONS } from './luks2-digest.js';
import { readHeaders, HDR_SIZES, MAGIC_PRIMARY } from './luks2-header.js';
import { isLuks1, parseLuks1Header } from './luks1-header.js';
import { storeKeyslot, keyslotAreaSize } from './luks2-keyslot.js';
import { DEFAULT_DATA_OFFSET, DEFAULT_HDR_SIZE, DEFAULT_KEYSLOTS_SIZE } from './luks2-layout.js';
import { parseMetadata } from './luks2-metadata.js';
import { serializeMetadata, keyslotJson, segmentJson, digestJson } from './luks2-metadata-json.js';
import type { JsonObject } from './luks2-json-fields.js';
import { commitHeader, describeVolume, type LoadedHeader, type OpenedVolume } from './luks2-volume-state.js';

export interface FormatOptions extends KdfOptions {
  sectorSize?: 512 | 4096;
  label?: string;
  uuid?: string;
  force?: boolean;
  volumeKey?: Buffer;
  /** Data cipher in cryptsetup's notation (default aes-xts-plain64); keyslot areas use it too, as cryptsetup does. */
  cipher?: string;
  /** Volume key bits (default 512 for an XTS cipher, 256 otherwise, as cryptsetup's luksFormat). */
  keyBits?: number;
  /** Data segment offset in bytes: 16 MiB (default), or 0 for a detached header (the data lives on another device). */
  dataOffset?: 0 | 16777216;
}

/**
 * Throws EEXIST if `dev` holds a LUKS header (either copy, at any allowed offset) or its first
 * MiB is not all zeroes. The CLI calls it before asking for a passphrase; formatVolume calls
 * it again unless `force`.
 */
export async function refuseNonEmpty(dev: BlockDevice): Promise<void> {
  try {
    const r = await readHeaders(dev);
    throw new NbdcryptError('EEXIST', `the device already holds a LUKS2 header (UUID ${r.chosen.uuid}); formatting destroys its data — use --force to do it anyway`);
  } catch (e) {
    if (e instanceof NbdcryptError && e.code === 'EEXIST') throw e;
  }
  const head = await dev.read(0, Math.min(dev.size, 1 << 20));
  if (isLuks1(head)) {
    const uuid = (() => {
      try {
        return ` (UUID ${parseLuks1Header(head).uuid})`;
      } catch {
        return ' (damaged)';
      }
    })();
    throw new NbdcryptError('EEXIST', `the device already holds a LUKS1 header${uuid}; formatting destroys its data — use --force to do it anyway`);
  }
  if (head.subarray(0, 6).equals(MAGIC_PRIMARY)) throw new NbdcryptError('EEXIST', 'the device starts with a damaged LUKS header; use --force to overwrite it');
  if (head.some((b) => b !== 0)) throw new NbdcryptError('EEXIST', 'the device is not empty (its first MiB holds non-zero bytes: a filesystem or partition table?); use --force to overwrite it');
  for (const off of HDR_SIZES) {
    if (off < head.length || off + 6 > dev.size) continue;
    if ((await dev.read(off, 6)).subarray(0, 4).toString('latin1') === 'SKUL') throw new NbdcryptError('EEXIST', `the device holds a LUKS2 secondary header at ${off}; use --force to overwrite it`);
  }
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Creates a LUKS2 volume with one keyslot (0) for `passphrase`, laid out like cryptsetup's defaults. */
export async function formatVolume(dev: BlockDevice, passphrase: Buffer, opts: FormatOptions = {}): Promise<OpenedVolume> {
  checkWritable(dev, 'format');
  const sectorSize = opts.sectorSize ?? 4096;
  if (sectorSize !== 512 && sectorSize !== 4096) throw new NbdcryptError('EUSAGE', `sector size ${String(sectorSize)} is not supported; use 512 or 4096`);
  const uuid = (opts.uuid ?? randomUUID()).toLowerCase();
  if (!UUID_RE.test(uuid)) throw new NbdcryptError('EUSAGE', `UUID '${opts.uuid}' is not of the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`);
  const label = opts.label ?? '';
  if (Buffer.byteLength(label) > 47) throw new NbdcryptError('EUSAGE', `label '${label}' is too long: at most 47 bytes`);
  const dataOffset = opts.dataOffset ?? DEFAULT_DATA_OFFSET;
  if (dataOffset !== 0 && dataOffset !== DEFAULT_DATA_OFFSET) throw new NbdcryptError('EUSAGE', `data offset ${dataOffset} is not supported; use ${DEFAULT_DATA_OFFSET} or 0 (detached header)`);
  const minSize = dataOffset === 0 ? DEFAULT_DATA_OFFSET : DEFAULT_DATA_OFFSET + sectorSize;
  if (dev.size < minSize) throw new NbdcryptError('EUSAGE', `the device (${dev.size} bytes) is too small: LUKS2 needs 16 MiB of metadata plus at least one ${sectorSize}-byte sector`);
  if (dataOffset !== 0 && (dev.size - DEFAULT_DATA_OFFSET) % sectorSize !== 0) throw new NbdcryptError('EUSAGE', `the device size ${dev.size} is not a multiple of the ${sectorSize}-byte sector size; resize it or use --sector-size 512`);
  const encryption = opts.cipher ?? DEFAULT_CIPHER;
  const { spec, keyBytes } = formatCipher(encryption, opts.keyBits ?? (parseCipherSpec(encryption).mode === 'xts' ? 512 : 256));
  const key = newVolumeKey(spec, keyBytes, opts.volumeKey);
  try {
    return await writeVolume(dev, key, passphrase, { ...opts, encryption, sectorSize, uuid, label, dataOffset });
  } catch (e) {
    key.fill(0);
    throw e;
  }
}

/** Writes keyslot 0 for `key` and both header copies (the checks are done). */
async function writeVolume(dev: BlockDevice, key: Buffer, passphrase: Buffer, opts: Omit<FormatOptions, 'sectorSize' | 'dataOffset'> & { encryption: string; sectorSize: number; uuid: string; label: string; dataOffset: number }): Promise<OpenedVolume> {
  const { encryption, sectorSize, uuid, label, dataOffset } = opts;
  if (!opts.force) await refuseNonEmpty(dev);
  const kdf = await chooseKdf(kdfChoiceOf(opts));
  const iterations = opts.pbkdfForceIterations !== undefined ? DIGEST_MIN_ITERATIONS : await benchmarkDigestIterations(key.length);
  const digest = await createDigest(key, iterations);

  // Random bytes over the whole keyslots area first (hides which part is in use).
  const start = 2 * DEFAULT_HDR_SIZE;
  for (let off = start; off < start + DEFAULT_KEYSLOTS_SIZE; off += 4 << 20) {
    await dev.write(off, randomBytes(Math.min(4 << 20, start + DEFAULT_KEYSLOTS_SIZE - off)));
  }
  const areaSize = keyslotAreaSize(key.length);
  await storeKeyslot(dev, { areaOffset: start, areaSize, kdf, encryption }, key, passphrase, opts.engines);
  const raw: JsonObject = {
    keyslots: { '0': keyslotJson({ keySize: key.length, areaOffset: start, areaSize, kdf, encryption }) },
    tokens: {},
    segments: { '0': segmentJson({ offset: dataOffset, sectorSize, encryption }) },
    digests: { '0': digestJson({ keyslots: [0], segments: [0], ...digest }) },
    config: { json_size: String(DEFAULT_HDR_SIZE - 4096), keyslots_size: String(DEFAULT_KEYSLOTS_SIZE) },
  };
  const l: LoadedHeader = {
    meta: parseMetadata(serializeMetadata(raw), DEFAULT_HDR_SIZE),
    fields: { hdrSize: DEFAULT_HDR_SIZE, seqid: 0n, label, checksumAlg: 'sha256', uuid, subsystem: '' },
  };
  await commitHeader(dev, l);
  kdf.salt.fill(0);
  return describeVolume(l, dev, key, 0);
}
