/**
 * SFTP status codes (SSH_FXP_STATUS, draft-ietf-secsh-filexfer-02 §7) as sftp-client.ts
 * reports them, and the line a user reads for each. `code` is the server's status number on
 * an answer; an error without one means the channel went away before the answer (the request
 * may or may not have run), which is a lost link, not an answer.
 */
import { NbdcryptError, type ErrorCode } from '../errors.js';

export const FX = {
  OK: 0,
  EOF: 1,
  NO_SUCH_FILE: 2,
  PERMISSION_DENIED: 3,
  FAILURE: 4,
  BAD_MESSAGE: 5,
  OP_UNSUPPORTED: 8,
} as const;

const names: Record<number, string> = {
  1: 'SSH_FX_EOF',
  2: 'SSH_FX_NO_SUCH_FILE',
  3: 'SSH_FX_PERMISSION_DENIED',
  4: 'SSH_FX_FAILURE',
  5: 'SSH_FX_BAD_MESSAGE',
  6: 'SSH_FX_NO_CONNECTION',
  7: 'SSH_FX_CONNECTION_LOST',
  8: 'SSH_FX_OP_UNSUPPORTED',
};

/** The server's status code, or undefined when the error is not an answer (lost channel). */
export function statusOf(e: unknown): number | undefined {
  const code = (e as { code?: unknown } | undefined)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** "SSH_FX_FAILURE: Failure" style text of a server answer. */
export function describeStatus(e: Error): string {
  const code = statusOf(e);
  const name = code === undefined ? 'no answer' : (names[code] ?? `status ${code}`);
  return e.message && e.message !== name ? `${name}: ${e.message}` : name;
}

/** Error for a failed data-path request: EIO, with a hint where the status suggests one. */
export function requestError(name: string, what: string, e: Error): NbdcryptError {
  const hint = statusOf(e) === FX.FAILURE && what.startsWith('write') ? '; the server\'s disk may be full' : '';
  return new NbdcryptError('EIO', `${name}: remote ${what} failed (${describeStatus(e)})${hint}`, { cause: e });
}

/** Error for opening the image: permission, missing, or anything else the server said. */
export function openError(name: string, path: string, e: Error): NbdcryptError {
  const code = statusOf(e);
  let c: ErrorCode = 'EIO';
  let why = `the server answered ${describeStatus(e)}`;
  if (code === FX.PERMISSION_DENIED) {
    c = 'EACCES';
    why = `permission denied (${describeStatus(e)}); check the owner and mode of ${path} and its directory on the server`;
  } else if (code === FX.NO_SUCH_FILE) {
    c = 'ENOEXPORT';
    why = `no such file on the server; check the path (absolute as the server sees it, /~/ for the login directory) or create it with 'nbdcrypt format ${name} --size SIZE'`;
  }
  return new NbdcryptError(c, `${name}: cannot open ${path}: ${why}`, { cause: e });
}
