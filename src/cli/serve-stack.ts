/**
 * Builds the BlockDevice stack `nbdcrypt serve` puts behind the NBD server: for a LUKS2 or
 * LUKS1 volume TARGET (file, or the remote NBD client over SSH/TCP/unix) → EncryptedDevice
 * (the volume's cipher with the unlocked volume key) → SectorCache (plaintext, write-through);
 * with --unencrypted TARGET alone. `openServedDevice` is the one place that decides which.
 * Keeps handles on the layers whose counters the stats line reads. The passphrase and the
 * volume key are wiped here as soon as the layer that needs them has its own copy. Every
 * layer gets the command's request buffers (serve-runtime.ts).
 * Layers: docs/ARCHITECTURE.md; tweak rule and data offset: docs/formats.md (LUKS2 data segment).
 */
import type { BlockDevice } from '../block/block-device.js';
import { SectorCache } from '../block/sector-cache.js';
import { EncryptedDevice } from '../crypt/encrypted-device.js';
import { log } from '../log.js';
import { openVolume } from '../luks/open-volume.js';
import { NbdcryptError } from '../errors.js';
import { ResilientDevice } from '../resilient/resilient-device.js';
import { openTarget } from '../backend/open-target.js';
import { getPassphrase } from './passphrase.js';
import type { ServeOptions } from './serve-options.js';
import { withRuntime, type ServeRuntime } from './serve-runtime.js';

/** Cache granule: one page, whatever the LUKS sector size (the kernel reads in pages). */
const CACHE_BLOCK = 4096;

export interface ServedStack {
  /** The top of the stack, what the NBD server serves. */
  device: BlockDevice;
  /** Present when --cache > 0. */
  cache?: SectorCache;
  /** Present for remote targets. */
  client?: ResilientDevice;
  /** One line for the log: volume, sector size, engine. */
  description: string;
  /** The LUKS volume UUID ('raw' for --unencrypted): part of a kernel device's backend identifier. */
  volumeId: string;
}

/** The BlockDevice stack to serve for these options: plaintext (--unencrypted) or LUKS2. */
/** `signal` aborts the opening (SIGINT/SIGTERM while unlocking: the key derivation is killed). */
export async function openServedDevice(o: ServeOptions, runtime: ServeRuntime, signal?: AbortSignal): Promise<ServedStack> {
  if (o.unencrypted) {
    const device = await openTarget(o.target, withRuntime(o.targetOptions, runtime));
    return { device, client: device instanceof ResilientDevice ? device : undefined, description: `${o.target} as plaintext`, volumeId: 'raw' };
  }
  if (o.target.startsWith('memory:')) {
    throw new NbdcryptError('EUSAGE', `serve: a memory: target starts empty and holds no LUKS2 volume; serve it as plaintext with --unencrypted (debugging only), or use a file formatted with 'nbdcrypt format'`);
  }
  return openEncryptedStack(o, runtime, signal);
}

async function openEncryptedStack(o: ServeOptions, runtime: ServeRuntime, signal: AbortSignal | undefined): Promise<ServedStack> {
  const { engines } = runtime.env;
  const buffers = runtime.io.buffers;
  const lower = await openTarget(o.target, withRuntime(o.targetOptions, runtime));
  let passphrase: Buffer | undefined;
  let volumeKey: Buffer | undefined;
  try {
    passphrase = await getPassphrase({ keyFile: o.keyFile, prompt: `Enter passphrase for ${o.target}: ` });
    const vol = await openVolume(lower, passphrase, { keySlot: o.keySlot, engines, signal, allowCostlyKdf: o.allowCostlyKdf });
    volumeKey = vol.volumeKey;
    const enc = new EncryptedDevice(lower, {
      key: vol.volumeKey,
      cipher: vol.cipher,
      dataOffset: vol.dataOffset,
      sectorSize: vol.sectorSize,
      ivTweak: vol.ivTweak,
      allowDiscards: o.allowDiscards,
      engine: engines.xts,
      buffers,
    });
    if (enc.size !== vol.dataSize) {
      // A fixed-size segment shorter than the device: serve exactly the segment.
      log.warn(`${vol.format} data segment is ${vol.dataSize} bytes, the device holds ${enc.size}; serving ${enc.size} bytes`);
    }
    if (o.allowDiscards && !enc.caps.trim) log.warn('--allow-discards: the target cannot trim (or is read-only); TRIM will not be advertised');
    const cache = o.cacheBytes > 0 ? new SectorCache(enc, CACHE_BLOCK, Math.max(o.cacheBytes, CACHE_BLOCK), buffers) : undefined;
    const client = lower instanceof ResilientDevice ? lower : undefined;
    return {
      device: cache ?? enc,
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
