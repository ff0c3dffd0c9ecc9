/**
 * The fixed-newstyle option phase as pure functions: given the bytes a client has sent so far
 * and the exports on offer, say how many bytes were consumed, which replies to send and what
 * happens next (wait for more, close, or enter transmission with an export). No sockets, so
 * the fuzz tests can drive it directly. Spec: docs/formats.md (NBD handshake).
 */
import {
  encodeExportNameReply,
  encodeInfoBlockSize,
  encodeInfoExport,
  encodeInfoText,
  encodeOptionReply,
  encodeServerReply,
  decodeInfoRequest,
  type BlockSizeInfo,
} from './codec.js';
import {
  CLIENT_FIXED_NEWSTYLE,
  CLIENT_NO_ZEROES,
  IHAVEOPT,
  Info,
  MAX_OPTION_LENGTH,
  OPTION_HEADER_SIZE,
  Opt,
  Rep,
} from './protocol.js';

/** What the option phase needs to know about one export (no device, just metadata). */
export interface ExportInfo {
  name: string;
  description: string;
  size: number;
  transmissionFlags: number;
  blockSize: BlockSizeInfo;
}

export type HandshakeState = { stage: 'client-flags' } | { stage: 'options'; noZeroes: boolean };

export type HandshakeNext =
  | { kind: 'need-more' }
  | { kind: 'continue' }
  | { kind: 'close'; reason: string }
  | { kind: 'transmit'; exportName: string };

export interface HandshakeStep {
  /** Bytes of `input` used by this step (0 when more are needed). */
  consumed: number;
  replies: Buffer[];
  state: HandshakeState;
  next: HandshakeNext;
}

export const initialHandshakeState: HandshakeState = { stage: 'client-flags' };

const KNOWN_CLIENT_FLAGS = CLIENT_FIXED_NEWSTYLE | CLIENT_NO_ZEROES;

/**
 * Processes at most one message (the client flags or one option) from the front of `input`.
 * Call repeatedly while `next.kind === 'continue'`, dropping `consumed` bytes each time.
 */
export function handshakeStep(state: HandshakeState, input: Buffer, exports: readonly ExportInfo[]): HandshakeStep {
  if (state.stage === 'client-flags') {
    if (input.length < 4) return { consumed: 0, replies: [], state, next: { kind: 'need-more' } };
    const flags = input.readUInt32BE(0);
    // We always advertise NO_ZEROES, so C_NO_ZEROES is legal; anything else unknown is fatal.
    if ((flags & ~KNOWN_CLIENT_FLAGS) !== 0) {
      return { consumed: 4, replies: [], state, next: { kind: 'close', reason: `unknown client flags 0x${flags.toString(16)}` } };
    }
    if ((flags & CLIENT_FIXED_NEWSTYLE) === 0) {
      // Plain (non-fixed) newstyle clients cannot cope with ERR_UNSUP; we only speak fixed newstyle.
      return { consumed: 4, replies: [], state, next: { kind: 'close', reason: 'client did not set C_FIXED_NEWSTYLE' } };
    }
    return { consumed: 4, replies: [], state: { stage: 'options', noZeroes: (flags & CLIENT_NO_ZEROES) !== 0 }, next: { kind: 'continue' } };
  }

  if (input.length < OPTION_HEADER_SIZE) return { consumed: 0, replies: [], state, next: { kind: 'need-more' } };
  const magic = input.readBigUInt64BE(0);
  const option = input.readUInt32BE(8);
  const length = input.readUInt32BE(12);
  if (magic !== IHAVEOPT) {
    return { consumed: OPTION_HEADER_SIZE, replies: [], state, next: { kind: 'close', reason: 'bad option magic' } };
  }
  if (length > MAX_OPTION_LENGTH) {
    // The data cannot be skipped cheaply and no sane option is this long: say so, then close.
    const reply = encodeOptionReply(option, Rep.ERR_TOO_BIG, Buffer.from(`option data of ${length} bytes exceeds ${MAX_OPTION_LENGTH}`));
    return { consumed: OPTION_HEADER_SIZE, replies: [reply], state, next: { kind: 'close', reason: 'option too long' } };
  }
  if (input.length < OPTION_HEADER_SIZE + length) return { consumed: 0, replies: [], state, next: { kind: 'need-more' } };
  const data = input.subarray(OPTION_HEADER_SIZE, OPTION_HEADER_SIZE + length);
  const consumed = OPTION_HEADER_SIZE + length;
  const r = answerOption(option, data, exports, state.noZeroes);
  return { consumed, replies: r.replies, state, next: r.next };
}

/** The reply to one complete option. */
export function answerOption(
  option: number,
  data: Buffer,
  exports: readonly ExportInfo[],
  noZeroes: boolean,
): { replies: Buffer[]; next: HandshakeNext } {
  const err = (type: number, msg: string) => ({ replies: [encodeOptionReply(option, type, Buffer.from(msg))], next: { kind: 'continue' } as const });
  switch (option) {
    case Opt.EXPORT_NAME: {
      const name = data.toString('utf8');
      const ex = findExport(exports, name);
      // EXPORT_NAME has no error reply: the only way to refuse is to close.
      if (!ex) return { replies: [], next: { kind: 'close', reason: `unknown export '${name}' in EXPORT_NAME` } };
      return {
        replies: [encodeExportNameReply(ex.size, ex.transmissionFlags, noZeroes)],
        next: { kind: 'transmit', exportName: ex.name },
      };
    }
    case Opt.ABORT:
      return { replies: [encodeOptionReply(option, Rep.ACK)], next: { kind: 'close', reason: 'client sent OPT_ABORT' } };
    case Opt.LIST: {
      if (data.length !== 0) return err(Rep.ERR_INVALID, 'NBD_OPT_LIST takes no data');
      const replies = exports.map((e) => encodeOptionReply(option, Rep.SERVER, encodeServerReply(e.name, e.description)));
      replies.push(encodeOptionReply(option, Rep.ACK));
      return { replies, next: { kind: 'continue' } };
    }
    case Opt.INFO:
    case Opt.GO: {
      const req = decodeInfoRequest(data);
      if (!req) return err(Rep.ERR_INVALID, 'malformed NBD_OPT_INFO/GO data');
      const ex = findExport(exports, req.name);
      if (!ex) return err(Rep.ERR_UNKNOWN, `no export named '${req.name}'`);
      const replies = [encodeOptionReply(option, Rep.INFO, encodeInfoExport(ex.size, ex.transmissionFlags))];
      // Unknown info requests are ignored, as the spec asks; NAME/DESCRIPTION only on request.
      const wanted = new Set(req.requests);
      if (wanted.has(Info.NAME)) replies.push(encodeOptionReply(option, Rep.INFO, encodeInfoText(Info.NAME, ex.name)));
      if (wanted.has(Info.DESCRIPTION) && ex.description !== '') {
        replies.push(encodeOptionReply(option, Rep.INFO, encodeInfoText(Info.DESCRIPTION, ex.description)));
      }
      // Block sizes are sent unasked too: clients that did not request them may ignore them.
      replies.push(encodeOptionReply(option, Rep.INFO, encodeInfoBlockSize(ex.blockSize)));
      replies.push(encodeOptionReply(option, Rep.ACK));
      return { replies, next: option === Opt.GO ? { kind: 'transmit', exportName: ex.name } : { kind: 'continue' } };
    }
    default:
      // STARTTLS, STRUCTURED_REPLY, META_CONTEXT, EXTENDED_HEADERS and anything unknown.
      return err(Rep.ERR_UNSUP, `option ${option} is not supported`);
  }
}

/** The empty name selects the default (first) export, as nbd-server and nbdkit do. */
function findExport(exports: readonly ExportInfo[], name: string): ExportInfo | undefined {
  if (name === '') return exports[0];
  return exports.find((e) => e.name === name);
}
