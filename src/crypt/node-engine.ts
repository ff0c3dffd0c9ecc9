/**
 * The portable XTS engine: node:crypto's 'aes-256-xts' (OpenSSL), one cipher object per
 * sector because the tweak changes every sector. Correct everywhere Node runs, but the
 * per-call overhead caps it far below the CPU's AES speed with small sectors, which is why
 * the native engine exists. Its async variant works in slices so the event loop keeps
 * breathing. The loop is the portable sector engine's (js-sector-engine.ts) over node:crypto
 * AES (node-sector-units.ts). Spec: IEEE Std 1619-2018; tweak rule docs/formats.md (LUKS2
 * data segment).
 */
import { parseCipherSpec } from './cipher-spec.js';
import { createJsSectorEngine } from './js-sector-engine.js';
import { nodeAesUnits } from './node-sector-units.js';
import type { XtsCipher } from './xts-cipher.js';

/** Bytes processed between event-loop turns in the async variant (~0.1-1 ms of work). */
const SLICE = 64 * 1024;

/** aes-xts-plain64 with a 64-byte key: per sector, one node:crypto 'aes-256-xts' object. */
export function createNodeEngine(key: Buffer): XtsCipher {
  const spec = parseCipherSpec('aes-xts-plain64');
  return createJsSectorEngine(spec, 'node', nodeAesUnits(spec, key), SLICE);
}
