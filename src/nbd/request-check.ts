/**
 * Decides, before any I/O, what to do with one transmission request: how many payload bytes
 * follow it on the wire, whether it is answered with an error right away, and whether the
 * connection must close. Pure, so the fuzz tests can check every branch. Also the one place
 * that maps NbdcryptError codes (and Node errno codes) to NBD error values.
 * Spec: docs/formats.md (NBD transmission).
 */
import { isNbdcryptError } from '../errors.js';
import { CF, Cmd, Err, MAX_PAYLOAD, TF } from './protocol.js';
import type { Request } from './codec.js';

export interface RequestContext {
  size: number;
  transmissionFlags: number;
}

export type Verdict =
  /** Consume `payload` bytes, then run the command. */
  | { kind: 'run'; payload: number; offset: number }
  /** Consume `payload` bytes, then reply `error` without touching the device. */
  | { kind: 'error'; payload: number; error: number }
  /** Reply `error` (if not undefined), then close: the stream cannot be resynchronised. */
  | { kind: 'close'; error?: number; reason: string }
  /** NBD_CMD_DISC: no reply; finish what is in flight and close. */
  | { kind: 'disconnect' };

const maxU53 = BigInt(Number.MAX_SAFE_INTEGER);

/** Flags each command may carry. FUA is accepted everywhere: clients do set it on reads. */
function allowedFlags(type: number): number {
  return type === Cmd.WRITE_ZEROES ? CF.FUA | CF.NO_HOLE | CF.FAST_ZERO : CF.FUA;
}

export function checkRequest(r: Request, ctx: RequestContext): Verdict {
  const tf = ctx.transmissionFlags;
  const isWrite = r.type === Cmd.WRITE;
  if (isWrite && r.length > MAX_PAYLOAD) {
    // We will not buffer it and cannot skip it without reading it: answer, then hang up.
    return { kind: 'close', error: Err.EINVAL, reason: `write payload of ${r.length} bytes exceeds ${MAX_PAYLOAD}` };
  }
  const payload = isWrite ? r.length : 0;
  const fail = (error: number): Verdict => ({ kind: 'error', payload, error });

  switch (r.type) {
    case Cmd.DISC:
      return { kind: 'disconnect' };
    case Cmd.READ:
    case Cmd.WRITE:
    case Cmd.FLUSH:
    case Cmd.TRIM:
    case Cmd.CACHE:
    case Cmd.WRITE_ZEROES:
      break;
    default:
      // Unknown commands (and BLOCK_STATUS, which needs structured replies) carry no payload.
      return fail(Err.EINVAL);
  }
  if ((r.flags & ~allowedFlags(r.type)) !== 0) return fail(Err.EINVAL);
  if ((r.flags & CF.FAST_ZERO) !== 0 && (tf & TF.SEND_FAST_ZERO) === 0) return fail(Err.EINVAL);

  const advertised =
    (r.type === Cmd.FLUSH && (tf & TF.SEND_FLUSH) !== 0) ||
    (r.type === Cmd.TRIM && (tf & TF.SEND_TRIM) !== 0) ||
    (r.type === Cmd.CACHE && (tf & TF.SEND_CACHE) !== 0) ||
    (r.type === Cmd.WRITE_ZEROES && (tf & TF.SEND_WRITE_ZEROES) !== 0) ||
    r.type === Cmd.READ ||
    r.type === Cmd.WRITE;
  if (!advertised) return fail(Err.EINVAL);

  const modifies = r.type === Cmd.WRITE || r.type === Cmd.TRIM || r.type === Cmd.WRITE_ZEROES;
  if (modifies && (tf & TF.READ_ONLY) !== 0) return fail(Err.EPERM);

  if (r.type === Cmd.FLUSH) {
    // The spec says offset and length SHOULD be 0; be lenient, like nbd-server and nbdkit.
    return { kind: 'run', payload: 0, offset: 0 };
  }
  if (r.type === Cmd.READ && r.length > MAX_PAYLOAD) return fail(Err.EINVAL);

  const end = r.offset + BigInt(r.length);
  if (r.offset > maxU53 || end > BigInt(ctx.size)) {
    // Past the end: writes get ENOSPC (like a full disk), everything else EINVAL.
    return fail(modifies ? Err.ENOSPC : Err.EINVAL);
  }
  return { kind: 'run', payload, offset: Number(r.offset) };
}

/** NbdcryptError codes and Node errno codes → NBD error values; `write` picks ENOSPC vs EINVAL. */
export function nbdErrorOf(e: unknown, write: boolean): number {
  if (isNbdcryptError(e)) {
    switch (e.code) {
      case 'ERANGE':
        return write ? Err.ENOSPC : Err.EINVAL;
      case 'EROFS':
        return Err.EPERM;
      case 'ENOTSUP':
        return Err.ENOTSUP;
      case 'ECLOSED':
        return Err.ESHUTDOWN;
      default:
        return Err.EIO;
    }
  }
  const code = (e as { code?: unknown } | null)?.code;
  switch (code) {
    case 'ENOSPC':
    case 'EDQUOT':
    case 'EFBIG':
      return Err.ENOSPC;
    case 'EROFS':
    case 'EPERM':
    case 'EACCES':
      return Err.EPERM;
    case 'ENOMEM':
      return Err.ENOMEM;
    case 'EINVAL':
      return Err.EINVAL;
    case 'ENOTSUP':
    case 'EOPNOTSUPP':
      return Err.ENOTSUP;
    default:
      return Err.EIO;
  }
}
