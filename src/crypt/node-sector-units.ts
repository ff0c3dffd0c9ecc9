/**
 * AES in the sector modes through node:crypto (OpenSSL): one cipher object per sector, as
 * the node XTS engine does, because the IV changes every sector. The portable path for AES
 * specs other than aes-xts-plain64 with a 512-bit key (which node-engine.ts serves).
 * Spec: NIST SP 800-38A (CBC, ECB); IEEE Std 1619-2018 (XTS); dm-crypt.rst (ESSIV).
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import type { CipherSpec } from './cipher-spec.js';
import type { SectorUnits } from './sector-modes.js';

export function nodeAesUnits(spec: CipherSpec, key: Uint8Array, ivKey?: Uint8Array): SectorUnits {
  const k = Buffer.from(key);
  const ek = ivKey ? Buffer.from(ivKey) : undefined;
  // XTS names the size of one AES key: a 256-bit XTS key is aes-128-xts.
  const bits = spec.mode === 'xts' ? key.length * 4 : key.length * 8;
  const name = `aes-${bits}-${spec.mode}`;
  return {
    unit(enc, buf, off, len, iv) {
      const ivArg = spec.mode === 'ecb' ? null : iv;
      const c = enc ? createCipheriv(name, k, ivArg) : createDecipheriv(name, k, ivArg);
      c.setAutoPadding(false);
      const out = c.update(buf.subarray(off, off + len));
      buf.set(out, off);
      c.final();
    },
    essiv: ek
      ? (iv) => {
          const c = createCipheriv('aes-256-ecb', ek, null).setAutoPadding(false);
          iv.set(c.update(iv));
          c.final();
        }
      : undefined,
    wipe() {
      k.fill(0);
      ek?.fill(0);
    },
  };
}
