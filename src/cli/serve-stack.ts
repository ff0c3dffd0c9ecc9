/**
 * Builds the BlockDevice stack `nbdcrypt serve` puts behind the NBD server for a LUKS2 or
 * LUKS1 volume: TARGET (file, or the remote NBD client over SSH/TCP/unix) → EncryptedDevice
 * (the volume's cipher with the unlocked volume key) → SectorCache (plaintext, write-through).
 * Keeps handles on the layers whose counters the stats line reads. The passphrase and the
 * volume key are wiped here as soon as the layer that needs them has its own copy.
 * Layers: docs/ARCHITECTURE.md; tweak rule and data offset: docs/formats.md (LUKS2 data segment).
 */
import type { BlockDevice } from '../block/block-device.js';
import { SectorCache } from '../block/sector-cache.js';
import { EncryptedDevice } from '../crypt/encrypted-device.js';
import { log } from '../log.js';
import { openVolume } from '../luks/open-volume.js';
import { NbdClient } from '../nbd/client.js';
import type { BlockSizeInfo } from '../nbd/codec.js';
import { MAX_PAYLOAD } from '../nbd/protocol.js';
import { openTarget, type TargetOptions } from '../backend/open-target.js';
import { getPassphrase } from './passphrase.js';

/** Cache granule: one page, whatever the LUKS sector size (the kernel reads in pages). */
const CACHE_BLOCK = 4096;

export interface EncryptedStackOptions {
  target: string;
  targetOptions: TargetOptions;
  keyFile?: string;
  keySlot?: number;
  allowDiscards: boolean;
  /** Cache bytes; 0 = no cache. */
  cacheBytes: number;
  /** Unlock even if the header asks for a KDF cost above nbdcrypt's bounds (--allow-costly-kdf). */
  allowCostlyKdf?: boolean;
  /** Aborts the unlock (SIGINT/SIGTERM while opening). */
  signal?: AbortSignal;
}

export interface ServedStack {
  /** The top of the stack, what the NBD server serves. */
  device: BlockDevice;
  blockSize: BlockSizeInfo;
  /** Present when --cache > 0. */
  cache?: SectorCache;
  /** Present for remote targets. */
  client?: NbdClient;
  /** One line for the log: volume, sector size, engine. */
  description: string;
  /** The LUKS volume UUID ('raw' for --unencrypted): part of a kernel device's backend identifier. */
  volumeId: string;
}

export async function openEncryptedStack(o: EncryptedStackOptions): Promise<ServedStack> {
  const lower = await openTarget(o.target, o.targetOptions);
  let passphrase: Buffer | undefined;
  let volumeKey: Buffer | undefined;
  try {
    passphrase = await getPassphrase({ keyFile: o.keyFile, prompt: `Enter passphrase for ${o.target}: ` });
    const vol = await openVolume(lower, passphrase, { keySlot: o.keySlot, signal: o.signal, allowCostlyKdf: o.allowCostlyKdf });
    volumeKey = vol.volumeKey;
    const enc = new EncryptedDevice(lower, {
      key: vol.volumeKey,
      cipher: vol.cipher,
      dataOffset: vol.dataOffset,
      sectorSize: vol.sectorSize,
      ivTweak: vol.ivTweak,
      allowDiscards: o.allowDiscards,
    });
    if (enc.size !== vol.dataSize) {
      // A fixed-size segment shorter than the device: serve exactly the segment.
      log.warn(`${vol.format} data segment is ${vol.dataSize} bytes, the device holds ${enc.size}; serving ${enc.size} bytes`);
    }
    if (o.allowDiscards && !enc.caps.trim) log.warn('--allow-discards: the target cannot trim (or is read-only); TRIM will not be advertised');
    const cache = o.cacheBytes > 0 ? new SectorCache(enc, CACHE_BLOCK, Math.max(o.cacheBytes, CACHE_BLOCK)) : undefined;
    const client = lower instanceof NbdClient ? lower : undefined;
    return {
      device: cache ?? enc,
      blockSize: { minimum: 512, preferred: vol.sectorSize, maximum: MAX_PAYLOAD },
      cache,
      client,
      volumeId: vol.uuid,
      description: `${vol.format} volume ${vol.uuid}${vol.label ? ` (${vol.label})` : ''} unlocked with keyslot ${vol.keyslot}: ${enc.size} bytes, sector ${vol.sectorSize}, ${enc.cipherName} (${enc.engine} engine)`,
    };
  } catch (e) {
    await lower.close().catch(() => undefined);
    throw e;
  } finally {
    passphrase?.fill(0);
    // EncryptedDevice took its own copy of the key.
    volumeKey?.fill(0);
  }
}
