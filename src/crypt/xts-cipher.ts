/**
 * XtsCipher: aes-xts-plain64 with a 512-bit key over a buffer of consecutive sectors, what
 * every volume nbdcrypt formats uses for data and keyslots (sector-cipher.ts serves it here
 * and every other cipher spec elsewhere), and the engine choice for all ciphers
 * (defaultEngine). Three engines agree byte for byte:
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
import type { EngineName, SectorCipher } from './sector-cipher.js';

/** The AES-XTS engines are the sector-cipher engines (sector-cipher.ts). */
export type XtsEngineName = EngineName;
export type XtsCipher = SectorCipher;

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
