/**
 * The client side of the fixed-newstyle NBD handshake as a pure step function, the mirror of
 * the server's handshake.ts: given the bytes the server has sent so far, say how many were
 * consumed, what to send, and what happens next (wait for more, fail, or done with the
 * export). The client sends its flags and NBD_OPT_GO asking for NBD_INFO_BLOCK_SIZE, and
 * falls back to NBD_OPT_EXPORT_NAME when the server answers ERR_UNSUP (as nbd-client 3.24
 * does). No sockets, so the fuzz tests can drive it with hostile replies directly.
 * Spec: docs/formats.md (NBD handshake).
 */
import { NbdcryptError } from '../errors.js';
import { decodeInfoReply, decodeOptionReplyHeader, encodeInfoRequest, encodeOptionHeader, type BlockSizeInfo } from './codec.js';
import { checkBlockSize, checkExportSize, malformedInfo, printable, repErrorName } from './client-handshake-checks.js';
import {
  CLIENT_FIXED_NEWSTYLE,
  CLIENT_NO_ZEROES,
  FLAG_FIXED_NEWSTYLE,
  FLAG_NO_ZEROES,
  IHAVEOPT,
  Info,
  MAX_OPTION_LENGTH,
  MAX_PAYLOAD,
  NBDMAGIC,
  OPTION_REPLY_HEADER_SIZE,
  OPT_REPLY_MAGIC,
  Opt,
  Rep,
  isRepError,
} from './protocol.js';

/** Who we talk to and what we ask for; `where` starts every error message. */
export interface HandshakeTarget {
  exportName: string;
  where: string;
}

/** What the handshake learnt about the export. */
export interface NegotiatedExport {
  size: number;
  /** Transmission flags (TF). */
  flags: number;
  blockSize: BlockSizeInfo;
}

export type ClientHandshakeState =
  | { stage: 'greeting' }
  | { stage: 'go'; noZeroes: boolean; infos: number; size: number | undefined; flags: number; blockSize: BlockSizeInfo }
  | { stage: 'export-name'; noZeroes: boolean };

export type ClientHandshakeNext =
  /** `bytes` (> input.length) must be at the front of the input before the next step can decide. */
  | { kind: 'need-more'; bytes: number }
  | { kind: 'continue' }
  | { kind: 'fail'; error: NbdcryptError }
  | { kind: 'done'; export: NegotiatedExport };

export interface ClientHandshakeStep {
  /** Bytes of `input` used by this step; on `done` the rest belongs to the transmission phase. */
  consumed: number;
  send: Buffer[];
  state: ClientHandshakeState;
  next: ClientHandshakeNext;
}

export const initialClientHandshakeState: ClientHandshakeState = { stage: 'greeting' };

/** The most bytes a step ever waits for: one option reply header plus the largest data accepted. */
export const MAX_HANDSHAKE_MESSAGE = OPTION_REPLY_HEADER_SIZE + MAX_OPTION_LENGTH;

/** A real server sends 1-4 NBD_REP_INFO replies to NBD_OPT_GO; one that never stops is broken. */
export const MAX_GO_INFOS = 64;

/** Defaults the spec gives a client whose server sent no NBD_INFO_BLOCK_SIZE. */
export const DEFAULT_BLOCK_SIZE: BlockSizeInfo = { minimum: 1, preferred: 4096, maximum: MAX_PAYLOAD };

const GREETING_SIZE = 18;
/** NBD_OPT_EXPORT_NAME success: u64 size, u16 flags, then 124 zero bytes unless NO_ZEROES. */
const EXPORT_NAME_REPLY_SIZE = 10;
const EXPORT_NAME_ZEROES = 124;

/**
 * Processes at most one message (the greeting or one option reply) from the front of `input`.
 * Call again while `next.kind === 'continue'`, dropping `consumed` bytes each time. Never
 * throws on any input: a broken server is a `fail` with a one-line NbdcryptError.
 */
export function clientHandshakeStep(state: ClientHandshakeState, input: Buffer, target: HandshakeTarget): ClientHandshakeStep {
  switch (state.stage) {
    case 'greeting':
      return greetingStep(input, target);
    case 'go':
      return goStep(state, input, target);
    case 'export-name':
      return exportNameStep(state, input, target);
  }
}

/** The error to report when the stream ends (or breaks) before the handshake finished in `state`. */
export function clientHandshakeEnded(state: ClientHandshakeState, target: HandshakeTarget, cause?: Error): NbdcryptError {
  const where = printable(target.where);
  if (state.stage === 'export-name') {
    // NBD_OPT_EXPORT_NAME has no error reply: a server without the export just closes.
    const name = printable(target.exportName);
    return new NbdcryptError('ENOEXPORT', `${where} closed the connection on NBD_OPT_EXPORT_NAME '${name}': the export probably does not exist`, { cause });
  }
  if (cause) return new NbdcryptError('ECONNECT', `${where}: the connection failed during the NBD handshake: ${printable(cause.message)}`, { cause });
  return new NbdcryptError('EPROTO', `${where}: the NBD server closed the connection during the handshake`);
}

const needMore = (state: ClientHandshakeState, bytes: number): ClientHandshakeStep => ({ consumed: 0, send: [], state, next: { kind: 'need-more', bytes } });
const fail = (state: ClientHandshakeState, consumed: number, message: string, code: 'EPROTO' | 'ENOEXPORT' = 'EPROTO'): ClientHandshakeStep => ({
  consumed,
  send: [],
  state,
  next: { kind: 'fail', error: new NbdcryptError(code, message) },
});

function greetingStep(input: Buffer, target: HandshakeTarget): ClientHandshakeStep {
  const state = initialClientHandshakeState;
  if (input.length < GREETING_SIZE) return needMore(state, GREETING_SIZE);
  const where = printable(target.where);
  if (input.readBigUInt64BE(0) !== NBDMAGIC || input.readBigUInt64BE(8) !== IHAVEOPT) {
    return fail(state, GREETING_SIZE, `${where} is not a newstyle NBD server (bad greeting magic); check the port or socket`);
  }
  const flags = input.readUInt16BE(16);
  if (!(flags & FLAG_FIXED_NEWSTYLE)) return fail(state, GREETING_SIZE, `${where} does not speak fixed-newstyle NBD; upgrade the server`);
  const noZeroes = (flags & FLAG_NO_ZEROES) !== 0;
  const cflags = Buffer.alloc(4);
  cflags.writeUInt32BE(CLIENT_FIXED_NEWSTYLE | (noZeroes ? CLIENT_NO_ZEROES : 0));
  const go = encodeInfoRequest(target.exportName, [Info.BLOCK_SIZE]);
  return {
    consumed: GREETING_SIZE,
    send: [Buffer.concat([cflags, encodeOptionHeader(Opt.GO, go.length), go])],
    state: { stage: 'go', noZeroes, infos: 0, size: undefined, flags: 0, blockSize: DEFAULT_BLOCK_SIZE },
    next: { kind: 'continue' },
  };
}

function goStep(state: Extract<ClientHandshakeState, { stage: 'go' }>, input: Buffer, target: HandshakeTarget): ClientHandshakeStep {
  if (input.length < OPTION_REPLY_HEADER_SIZE) return needMore(state, OPTION_REPLY_HEADER_SIZE);
  const where = printable(target.where);
  const h = decodeOptionReplyHeader(input);
  if (h.magic !== OPT_REPLY_MAGIC) {
    return fail(state, OPTION_REPLY_HEADER_SIZE, `${where} sent an option reply with bad magic 0x${h.magic.toString(16)} during NBD_OPT_GO; the server is broken or not NBD`);
  }
  if (h.option !== Opt.GO) {
    return fail(state, OPTION_REPLY_HEADER_SIZE, `${where} sent an option reply for option ${h.option} while NBD_OPT_GO (${Opt.GO}) was pending; the server is broken`);
  }
  // Checked before waiting for the data, so a lying length never makes us buffer it.
  if (h.length > MAX_OPTION_LENGTH) {
    return fail(state, OPTION_REPLY_HEADER_SIZE, `${where} sent an option reply length of ${h.length} bytes to NBD_OPT_GO, more than the ${MAX_OPTION_LENGTH} accepted; the server is broken`);
  }
  const consumed = OPTION_REPLY_HEADER_SIZE + h.length;
  if (input.length < consumed) return needMore(state, consumed);
  const data = input.subarray(OPTION_REPLY_HEADER_SIZE, consumed);

  if (h.type === Rep.INFO) {
    if (state.infos >= MAX_GO_INFOS) {
      return fail(state, consumed, `${where} sent more than ${MAX_GO_INFOS} NBD_REP_INFO replies to NBD_OPT_GO; the server is broken`);
    }
    const counted = { ...state, infos: state.infos + 1 };
    const info = decodeInfoReply(data);
    if (!info) return fail(counted, consumed, malformedInfo(data, where));
    if ('size' in info) {
      const size = checkExportSize(info.size, 'NBD_INFO_EXPORT', where);
      if (typeof size === 'string') return fail(counted, consumed, size);
      return { consumed, send: [], state: { ...counted, size, flags: info.flags }, next: { kind: 'continue' } };
    }
    if ('minimum' in info) {
      const blockSize = checkBlockSize(info, where);
      if (typeof blockSize === 'string') return fail(counted, consumed, blockSize);
      return { consumed, send: [], state: { ...counted, blockSize }, next: { kind: 'continue' } };
    }
    // NAME, DESCRIPTION and unknown info types are ignored, as the spec asks of clients.
    return { consumed, send: [], state: counted, next: { kind: 'continue' } };
  }
  if (h.type === Rep.ACK) {
    if (state.size === undefined) return fail(state, consumed, `${where} acknowledged NBD_OPT_GO without NBD_INFO_EXPORT; the server is broken`);
    return { consumed, send: [], state, next: { kind: 'done', export: { size: state.size, flags: state.flags, blockSize: state.blockSize } } };
  }
  if (h.type === Rep.ERR_UNSUP) {
    const name = Buffer.from(target.exportName, 'utf8');
    return {
      consumed,
      send: [Buffer.concat([encodeOptionHeader(Opt.EXPORT_NAME, name.length), name])],
      state: { stage: 'export-name', noZeroes: state.noZeroes },
      next: { kind: 'continue' },
    };
  }
  const msg = data.length ? `: ${printable(data.toString('utf8'), 200)}` : '';
  const exportName = printable(target.exportName);
  if (h.type === Rep.ERR_UNKNOWN) {
    return fail(state, consumed, `${where} has no export named '${exportName}'${msg}; check the export name in the target`, 'ENOEXPORT');
  }
  if (isRepError(h.type)) {
    return fail(state, consumed, `${where} refused export '${exportName}' (NBD_OPT_GO error ${repErrorName(h.type)})${msg}`);
  }
  return fail(state, consumed, `${where} sent unexpected option reply type ${h.type} to NBD_OPT_GO; the server is broken`);
}

function exportNameStep(state: Extract<ClientHandshakeState, { stage: 'export-name' }>, input: Buffer, target: HandshakeTarget): ClientHandshakeStep {
  const want = EXPORT_NAME_REPLY_SIZE + (state.noZeroes ? 0 : EXPORT_NAME_ZEROES);
  if (input.length < want) return needMore(state, want);
  const size = checkExportSize(input.readBigUInt64BE(0), 'the NBD_OPT_EXPORT_NAME reply', printable(target.where));
  if (typeof size === 'string') return fail(state, want, size);
  return { consumed: want, send: [], state, next: { kind: 'done', export: { size, flags: input.readUInt16BE(8), blockSize: DEFAULT_BLOCK_SIZE } } };
}
