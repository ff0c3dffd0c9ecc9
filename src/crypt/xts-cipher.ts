/**
 * XtsCipher: aes-xts-plain64 over a buffer of consecutive sectors, the one entry point the
 * rest of nbdcrypt uses for data and keyslot encryption. Three engines agree byte for byte:
 * `native` (the N-API addon in native/, one OpenSSL call per request, async on the libuv pool),
 * `node` (node:crypto per sector, the portable fallback) and `reference` (pure TypeScript over
 * @noble/ciphers, a test oracle). Tweak rule: docs/formats.md (LUKS2 data segment);
 * engines: docs/ARCHITECTURE.md (Cipher engines). Spec: IEEE Std 1619-2018.
 */
import { log } from '../log.js';
import { checkKey } from './xts-args.js';
import { createNodeEngine } from './node-engine.js';
import { createReferenceEngine } from './reference-engine.js';
import { createNativeEngine } from './native-engine.js';
import { nativeLoadError } from '../native-addon.js';

export type XtsEngineName = 'native' | 'node' | 'reference';

export interface XtsCipher {
  readonly engine: XtsEngineName;
  /** In place. buf.length is a multiple of sectorSize; firstSector is the 512-byte-unit tweak number of buf[0] (iv_tweak already added); unit i uses firstSector + i*sectorSize/512. */
  encrypt(buf: Buffer, firstSector: number, sectorSize: number): void;
  decrypt(buf: Buffer, firstSector: number, sectorSize: number): void;
  encryptAsync(buf: Buffer, firstSector: number, sectorSize: number): Promise<void>;
  decryptAsync(buf: Buffer, firstSector: number, sectorSize: number): Promise<void>;
  /** Wipes the key copy; later calls throw ECLOSED. */
  destroy(): void;
}

const engineNames: readonly XtsEngineName[] = ['native', 'node', 'reference'];
let chosen: XtsEngineName | undefined;

/** Whether `name` names an engine (for the CLI's NBDCRYPT_ENGINE switch). */
export function isXtsEngineName(name: string): name is XtsEngineName {
  return (engineNames as readonly string[]).includes(name);
}

/**
 * The engine used when none is given: native when the addon loads, else node (with one
 * warning line per process).
 */
export function defaultEngine(): XtsEngineName {
  if (chosen !== undefined) return chosen;
  const err = nativeLoadError();
  if (err === undefined) return (chosen = 'native');
  log.warn(`native cipher engine unavailable (${err}); using node:crypto, which is slower with small sectors — run 'npm rebuild' with a C compiler to build it`);
  return (chosen = 'node');
}

/** A cipher for one 64-byte XTS key (copied; wipe the caller's copy yourself). */
export function createXtsCipher(key: Buffer, engine: XtsEngineName = defaultEngine()): XtsCipher {
  checkKey(key);
  switch (engine) {
    case 'native':
      return createNativeEngine(key);
    case 'node':
      return createNodeEngine(key);
    case 'reference':
      return createReferenceEngine(key);
    default:
      throw new RangeError(`engine must be native, node or reference, got ${String(engine)}`);
  }
}
