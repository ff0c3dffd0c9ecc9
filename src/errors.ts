/**
 * One error type for the whole program. Every failure a user can meet carries a stable
 * `code` (ENOKEY, EBADHDR, EHOSTKEY, …) that the CLI maps to an exit status, and a one-line
 * message that says what failed, why and what to do. Messages never contain key material.
 */
export type ErrorCode =
  | 'EUSAGE' // bad command line
  | 'ENOKEY' // no keyslot opened with the passphrase given
  | 'EBADHDR' // LUKS2 header missing, damaged or unsupported
  | 'EEXIST' // refusing to overwrite an existing header or data
  | 'EHOSTKEY' // SSH host key unknown, changed or revoked
  | 'EAUTH' // SSH authentication failed
  | 'ECONNECT' // could not reach the remote
  | 'EPROTO' // the NBD peer broke the protocol
  | 'ENOEXPORT' // the remote has no export of that name
  | 'ERANGE' // offset or length outside the device
  | 'EIO' // an I/O error from the layer below
  | 'EROFS' // write to a read-only device
  | 'ENOTSUP' // operation not supported by this device
  | 'ETIMEDOUT' // a request waited longer than --io-timeout
  | 'EINTR' // interrupted by SIGINT/SIGTERM before the work was done
  | 'ELISTEN' // cannot listen on the local NBD address (in use, not a socket, no permission)
  | 'ECLOSED' // the device was closed
  | 'ENONBD'; // no kernel nbd support here (module, netlink family or native addon missing)

export class NbdcryptError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'NbdcryptError';
    this.code = code;
  }
}

export function isNbdcryptError(e: unknown, code?: ErrorCode): e is NbdcryptError {
  return e instanceof NbdcryptError && (code === undefined || e.code === code);
}
