/**
 * Validation of what an NBD server tells the client during the handshake: export size, block
 * size constraints, NBD_REP_INFO payloads and server-supplied error text. Each check returns
 * the value, or a one-line message that names the field and what is wrong with it, so the step
 * function (client-handshake-step.ts) can turn it into a `fail` without throwing.
 * Spec: docs/formats.md (NBD handshake).
 */
import type { BlockSizeInfo } from './codec.js';
import { Info, MAX_PAYLOAD, Rep } from './protocol.js';

/** Largest minimum block size the spec allows. */
const MAX_MINIMUM_BLOCK = 64 * 1024;

/** A server-supplied or user-supplied string made safe for a one-line message. */
export function printable(s: string, max = 200): string {
  const clean = s.replace(/[\p{C}\p{Zl}\p{Zp}]/gu, '?');
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}

/** Offsets are JS numbers, so a size past 2^53 - 1 could not be addressed exactly. */
export function checkExportSize(size: bigint, field: string, where: string): number | string {
  if (size > BigInt(Number.MAX_SAFE_INTEGER)) {
    return `${where} sent export size ${size} in ${field}, beyond the 2^53 - 1 bytes nbdcrypt can address; use a smaller export`;
  }
  return Number(size);
}

function isPow2(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}

/**
 * The spec's rules for NBD_INFO_BLOCK_SIZE: minimum a power of two up to 64 KiB, preferred a
 * power of two no smaller than the minimum, maximum no smaller than the preferred. The maximum
 * is capped at MAX_PAYLOAD, the most we ever send in one request anyway (0xffffffff, "no
 * limit", included), and the preferred size with it so that it stays <= maximum (both are
 * powers of two >= minimum, so the result still obeys the rules).
 */
export function checkBlockSize(b: BlockSizeInfo, where: string): BlockSizeInfo | string {
  const bad = (what: string) => `${where} sent inconsistent NBD_INFO_BLOCK_SIZE: ${what}; fix the server's block size settings`;
  if (!isPow2(b.minimum)) return bad(`minimum block size ${b.minimum} is not a power of two`);
  if (b.minimum > MAX_MINIMUM_BLOCK) return bad(`minimum block size ${b.minimum} exceeds ${MAX_MINIMUM_BLOCK}`);
  if (!isPow2(b.preferred)) return bad(`preferred block size ${b.preferred} is not a power of two`);
  if (b.preferred < b.minimum) return bad(`preferred block size ${b.preferred} is below the minimum block size ${b.minimum}`);
  if (b.maximum < b.preferred) return bad(`maximum payload ${b.maximum} is below the preferred block size ${b.preferred}`);
  const maximum = Math.min(b.maximum, MAX_PAYLOAD);
  return { minimum: b.minimum, preferred: Math.min(b.preferred, maximum), maximum };
}

const INFO_LENGTHS: Record<number, { name: string; length: number }> = {
  [Info.EXPORT]: { name: 'NBD_INFO_EXPORT', length: 12 },
  [Info.BLOCK_SIZE]: { name: 'NBD_INFO_BLOCK_SIZE', length: 14 },
};

/** Why codec.decodeInfoReply refused an NBD_REP_INFO payload, naming the info type. */
export function malformedInfo(b: Buffer, where: string): string {
  const fixed = b.length >= 2 ? INFO_LENGTHS[b.readUInt16BE(0)] : undefined;
  if (!fixed) return `${where} sent an NBD_REP_INFO of ${b.length} bytes, too short to hold the info type; the server is broken`;
  return `${where} sent ${fixed.name} of ${b.length} bytes instead of ${fixed.length}; the server is broken`;
}

const REP_ERROR_NAMES = new Map<number, string>(
  Object.entries(Rep)
    .filter(([k]) => k.startsWith('ERR_'))
    .map(([k, v]) => [v, `NBD_REP_${k}`]),
);

export function repErrorName(type: number): string {
  return REP_ERROR_NAMES.get(type) ?? `0x${type.toString(16)}`;
}
