/**
 * Cipher specifications as cryptsetup writes them in LUKS headers: LUKS2's one `encryption`
 * string ("aes-xts-plain64", "twofish-cbc-essiv:sha256") and LUKS1's cipher name + cipher
 * mode pair ("twofish" + "cbc-essiv:sha256"). The string is "CIPHER-MODE[-IVGEN[:HASH]]" as
 * in dm-crypt's table line. Supported: aes, twofish, serpent × xts, cbc (IV plain64, plain or
 * essiv:sha256) and ecb (no IV). Anything else is refused with EBADHDR naming the part that is
 * not supported, so a volume is never served with a wrong decryption. IV numbering in 512-byte
 * sectors: docs/formats.md (LUKS2 data segment); spec: Linux
 * Documentation/admin-guide/device-mapper/dm-crypt.rst.
 */
import { NbdcryptError } from '../errors.js';

export type BlockCipherName = 'aes' | 'twofish' | 'serpent';
export type SectorMode = 'xts' | 'cbc' | 'ecb';
/** dm-crypt IV generators: plain64 = LE64(sector), plain = LE32(sector), essiv = E_hash(key)(plain64). */
export type IvGenerator = 'plain64' | 'plain' | 'essiv' | 'none';

export interface CipherSpec {
  readonly cipher: BlockCipherName;
  readonly mode: SectorMode;
  readonly iv: IvGenerator;
  /** The ESSIV hash (only 'sha256' is supported); undefined unless iv is 'essiv'. */
  readonly ivHash?: 'sha256';
  /** Canonical cryptsetup form, e.g. "twofish-cbc-essiv:sha256". */
  readonly name: string;
}

/** The spec of every LUKS2 volume nbdcrypt formats. */
export const DEFAULT_CIPHER = 'aes-xts-plain64';

const CIPHERS: readonly string[] = ['aes', 'twofish', 'serpent'];
const IV_MODES: readonly string[] = ['xts', 'cbc'];
const IVGENS: readonly string[] = ['plain64', 'plain', 'essiv'];

function unsupported(what: string, spec: string, why: string): NbdcryptError {
  return new NbdcryptError('EBADHDR', `cipher ${spec}: ${what} is not supported (${why}); nbdcrypt reads aes, twofish and serpent in xts or cbc with plain64, plain or essiv:sha256 IVs, and ecb`);
}

/** Parses the mode part ("xts-plain64", "cbc-essiv:sha256", "ecb") of a spec named `full`. */
function parseMode(cipher: string, mode: string, full: string): CipherSpec {
  if (!CIPHERS.includes(cipher)) throw unsupported(`block cipher '${cipher}'`, full, 'unknown or not implemented');
  const c = cipher as BlockCipherName;
  const dash = mode.indexOf('-');
  const chain = dash < 0 ? mode : mode.slice(0, dash);
  const ivPart = dash < 0 ? '' : mode.slice(dash + 1);
  if (chain === 'ecb') {
    if (ivPart !== '' && ivPart !== 'null') throw unsupported(`IV '${ivPart}' with ecb`, full, 'ecb takes no IV');
    return { cipher: c, mode: 'ecb', iv: 'none', name: `${cipher}-ecb` };
  }
  if (!IV_MODES.includes(chain)) throw unsupported(`mode '${chain}'`, full, 'unknown or not implemented');
  if (ivPart === '') throw unsupported(`mode '${chain}' without an IV generator`, full, 'name one, e.g. plain64');
  const colon = ivPart.indexOf(':');
  const gen = colon < 0 ? ivPart : ivPart.slice(0, colon);
  const arg = colon < 0 ? undefined : ivPart.slice(colon + 1);
  if (!IVGENS.includes(gen)) throw unsupported(`IV generator '${gen}'`, full, 'unknown or not implemented');
  const m = chain as SectorMode;
  if (gen === 'essiv') {
    if (arg !== 'sha256') throw unsupported(`ESSIV hash '${arg ?? ''}'`, full, 'only sha256 is implemented');
    return { cipher: c, mode: m, iv: 'essiv', ivHash: 'sha256', name: `${cipher}-${chain}-essiv:sha256` };
  }
  if (arg !== undefined) throw unsupported(`IV argument '${arg}' of ${gen}`, full, `${gen} takes none`);
  return { cipher: c, mode: m, iv: gen as IvGenerator, name: `${cipher}-${chain}-${gen}` };
}

/** A LUKS2 segment's or keyslot area's `encryption` string. */
export function parseCipherSpec(encryption: string): CipherSpec {
  if (typeof encryption !== 'string') throw new TypeError('encryption must be a string');
  const s = encryption.trim();
  if (s.startsWith('capi:')) throw unsupported('kernel crypto API notation', s, 'use the cipher-mode-iv form');
  const dash = s.indexOf('-');
  // cryptsetup reads a bare cipher name as CIPHER-cbc-plain.
  return dash < 0 ? parseMode(s, 'cbc-plain', s) : parseMode(s.slice(0, dash), s.slice(dash + 1), s);
}

/** A LUKS1 header's cipher name and cipher mode fields. */
export function parseLuks1Cipher(cipherName: string, cipherMode: string): CipherSpec {
  if (typeof cipherName !== 'string' || typeof cipherMode !== 'string') throw new TypeError('cipherName and cipherMode must be strings');
  const full = `${cipherName}-${cipherMode}`;
  if (cipherName.includes('-')) throw unsupported(`block cipher '${cipherName}'`, full, 'unknown or not implemented');
  return parseMode(cipherName, cipherMode, full);
}

/** Volume key sizes (bytes) a spec accepts: XTS takes two keys of the cipher's sizes. */
export function keySizes(spec: CipherSpec): readonly number[] {
  const one = spec.cipher === 'aes' && spec.mode === 'xts' ? [16, 32] : [16, 24, 32];
  return spec.mode === 'xts' ? one.map((n) => 2 * n) : one;
}

/** Refuses a volume key whose size the spec does not take (EBADHDR, naming both). */
export function checkKeySize(spec: CipherSpec, keyBytes: number): void {
  const ok = keySizes(spec);
  if (!ok.includes(keyBytes)) {
    throw new NbdcryptError('EBADHDR', `cipher ${spec.name}: a ${keyBytes * 8}-bit key is not supported; it takes ${ok.map((n) => n * 8).join(', ')} bits`);
  }
}

/** True for the one spec the AES-XTS fast path (xts-cipher.ts) serves with a 512-bit key. */
export function isAesXtsPlain64(spec: CipherSpec): boolean {
  return spec.cipher === 'aes' && spec.mode === 'xts' && spec.iv === 'plain64';
}
