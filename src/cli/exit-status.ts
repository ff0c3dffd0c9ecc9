/**
 * Exit statuses of every command: NbdcryptError codes map to a small set of numbers grouped
 * by cause, and each command's --help lists the ones it can return, from the same table, so
 * the help and the behaviour cannot drift apart.
 */
import type { ErrorCode } from '../errors.js';

/** Exit statuses by error code: 1 generic, 2 usage, the rest grouped by cause. */
export const exitCodes: Partial<Record<ErrorCode, number>> = {
  EUSAGE: 2,
  ENOKEY: 3,
  EBADHDR: 4,
  EEXIST: 5,
  EHOSTKEY: 6,
  EAUTH: 6,
  ECONNECT: 7,
  ENOEXPORT: 7,
  EPROTO: 7,
  ELISTEN: 8,
  ENONBD: 9,
  EACCES: 10,
  EBUSY: 11,
};

const meaning: Record<number, string> = {
  1: 'I/O, unsupported volume or internal error',
  2: 'usage (bad option, unreadable key file)',
  3: 'wrong passphrase or no usable keyslot',
  4: 'no, damaged or unsupported LUKS header or cipher (or one asking for an unreasonable KDF cost)',
  5: 'refusing to overwrite existing data or a file (use --force)',
  6: 'SSH host key or authentication',
  7: 'remote unreachable, export missing or NBD protocol error',
  8: 'cannot listen on the local NBD address (in use, not a socket, no permission)',
  9: 'no kernel nbd support here (module not loaded, or no native addon)',
  10: 'the server denied access to the image file or its directory (sftp://)',
  11: 'the image is in use by another writer (lock; --break-lock after a crash for sftp://)',
};

/** The "Exit status:" paragraph of a command's --help: `zero` says when it exits 0. */
export function exitStatusHelp(zero: string, statuses: readonly number[]): string {
  return ['Exit status:', `  0  ${zero}`, ...statuses.map((s) => `  ${s}  ${meaning[s]}`)].join('\n') + '\n';
}
