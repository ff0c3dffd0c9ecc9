/**
 * Pure NBD wire codec: message → bytes and bytes → message, no sockets. Both the front-end
 * server and the back-end client use it; it is what the fuzz tests exercise.
 * Spec: docs/formats.md (NBD).
 */
import {
  IHAVEOPT,
  Info,
  NBDMAGIC,
  OPTION_HEADER_SIZE,
  OPTION_REPLY_HEADER_SIZE,
  OPT_REPLY_MAGIC,
  REQUEST_HEADER_SIZE,
  REQUEST_MAGIC,
  SIMPLE_REPLY_MAGIC,
  SIMPLE_REPLY_SIZE,
} from './protocol.js';

export interface Request {
  flags: number; // command flags (CF)
  type: number; // command (Cmd)
  cookie: bigint;
  offset: bigint; // u64 on the wire; may exceed 2^53 in hostile input
  length: number;
}

export interface SimpleReply {
  error: number;
  cookie: bigint;
}

export interface OptionHeader {
  magic: bigint;
  option: number;
  length: number;
}

export interface OptionReplyHeader {
  magic: bigint;
  option: number;
  type: number;
  length: number;
}

export interface BlockSizeInfo {
  minimum: number;
  preferred: number;
  maximum: number;
}

/** Server greeting: NBDMAGIC, IHAVEOPT, u16 handshake flags. */
export function encodeGreeting(handshakeFlags: number): Buffer {
  const b = Buffer.alloc(18);
  b.writeBigUInt64BE(NBDMAGIC, 0);
  b.writeBigUInt64BE(IHAVEOPT, 8);
  b.writeUInt16BE(handshakeFlags, 16);
  return b;
}

export function decodeGreeting(b: Buffer): { magic: bigint; optMagic: bigint; flags: number } {
  return { magic: b.readBigUInt64BE(0), optMagic: b.readBigUInt64BE(8), flags: b.readUInt16BE(16) };
}

export function encodeOptionHeader(option: number, length: number): Buffer {
  const b = Buffer.alloc(OPTION_HEADER_SIZE);
  b.writeBigUInt64BE(IHAVEOPT, 0);
  b.writeUInt32BE(option >>> 0, 8);
  b.writeUInt32BE(length >>> 0, 12);
  return b;
}

export function decodeOptionHeader(b: Buffer): OptionHeader {
  return { magic: b.readBigUInt64BE(0), option: b.readUInt32BE(8), length: b.readUInt32BE(12) };
}

export function encodeOptionReply(option: number, type: number, data: Buffer = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(OPTION_REPLY_HEADER_SIZE + data.length);
  b.writeBigUInt64BE(OPT_REPLY_MAGIC, 0);
  b.writeUInt32BE(option >>> 0, 8);
  b.writeUInt32BE(type >>> 0, 12);
  b.writeUInt32BE(data.length, 16);
  data.copy(b, OPTION_REPLY_HEADER_SIZE);
  return b;
}

export function decodeOptionReplyHeader(b: Buffer): OptionReplyHeader {
  return { magic: b.readBigUInt64BE(0), option: b.readUInt32BE(8), type: b.readUInt32BE(12), length: b.readUInt32BE(16) };
}

/** OPT_INFO / OPT_GO payload: u32 namelen, name, u16 nreq, u16 req[nreq]. */
export function encodeInfoRequest(name: string, requests: number[]): Buffer {
  const n = Buffer.from(name, 'utf8');
  const b = Buffer.alloc(4 + n.length + 2 + 2 * requests.length);
  b.writeUInt32BE(n.length, 0);
  n.copy(b, 4);
  b.writeUInt16BE(requests.length, 4 + n.length);
  requests.forEach((r, i) => b.writeUInt16BE(r, 6 + n.length + 2 * i));
  return b;
}

/** Parses an OPT_INFO / OPT_GO payload; returns undefined if it is malformed. */
export function decodeInfoRequest(b: Buffer): { name: string; requests: number[] } | undefined {
  if (b.length < 6) return undefined;
  const len = b.readUInt32BE(0);
  if (len > b.length - 6) return undefined;
  const nreq = b.readUInt16BE(4 + len);
  if (b.length !== 6 + len + 2 * nreq) return undefined;
  const requests: number[] = [];
  for (let i = 0; i < nreq; i++) requests.push(b.readUInt16BE(6 + len + 2 * i));
  return { name: b.toString('utf8', 4, 4 + len), requests };
}

export function encodeInfoExport(size: number, transmissionFlags: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(Info.EXPORT, 0);
  b.writeBigUInt64BE(BigInt(size), 2);
  b.writeUInt16BE(transmissionFlags, 10);
  return b;
}

export function encodeInfoText(type: typeof Info.NAME | typeof Info.DESCRIPTION, text: string): Buffer {
  const t = Buffer.from(text, 'utf8');
  const b = Buffer.alloc(2 + t.length);
  b.writeUInt16BE(type, 0);
  t.copy(b, 2);
  return b;
}

export function encodeInfoBlockSize(s: BlockSizeInfo): Buffer {
  const b = Buffer.alloc(14);
  b.writeUInt16BE(Info.BLOCK_SIZE, 0);
  b.writeUInt32BE(s.minimum, 2);
  b.writeUInt32BE(s.preferred, 6);
  b.writeUInt32BE(s.maximum, 10);
  return b;
}

export type InfoReply =
  | { type: typeof Info.EXPORT; size: bigint; flags: number }
  | { type: typeof Info.NAME | typeof Info.DESCRIPTION; text: string }
  | ({ type: typeof Info.BLOCK_SIZE } & BlockSizeInfo)
  | { type: number; unknown: true };

/** Parses the payload of an NBD_REP_INFO reply; undefined if it is malformed. */
export function decodeInfoReply(b: Buffer): InfoReply | undefined {
  if (b.length < 2) return undefined;
  const type = b.readUInt16BE(0);
  switch (type) {
    case Info.EXPORT:
      return b.length === 12 ? { type, size: b.readBigUInt64BE(2), flags: b.readUInt16BE(10) } : undefined;
    case Info.NAME:
    case Info.DESCRIPTION:
      return { type, text: b.toString('utf8', 2) };
    case Info.BLOCK_SIZE:
      return b.length === 14
        ? { type, minimum: b.readUInt32BE(2), preferred: b.readUInt32BE(6), maximum: b.readUInt32BE(10) }
        : undefined;
    default:
      return { type, unknown: true };
  }
}

/** NBD_OPT_EXPORT_NAME success reply: u64 size, u16 flags, 124 zero bytes unless NO_ZEROES. */
export function encodeExportNameReply(size: number, transmissionFlags: number, noZeroes: boolean): Buffer {
  const b = Buffer.alloc(noZeroes ? 10 : 134);
  b.writeBigUInt64BE(BigInt(size), 0);
  b.writeUInt16BE(transmissionFlags, 8);
  return b;
}

/** NBD_REP_SERVER payload for OPT_LIST: u32 namelen, name, description. */
export function encodeServerReply(name: string, description = ''): Buffer {
  const n = Buffer.from(name, 'utf8');
  const d = Buffer.from(description, 'utf8');
  const b = Buffer.alloc(4 + n.length + d.length);
  b.writeUInt32BE(n.length, 0);
  n.copy(b, 4);
  d.copy(b, 4 + n.length);
  return b;
}

export function decodeServerReply(b: Buffer): { name: string; description: string } | undefined {
  if (b.length < 4) return undefined;
  const len = b.readUInt32BE(0);
  if (len > b.length - 4) return undefined;
  return { name: b.toString('utf8', 4, 4 + len), description: b.toString('utf8', 4 + len) };
}

export function encodeRequestHeader(r: Request): Buffer {
  const b = Buffer.allocUnsafe(REQUEST_HEADER_SIZE);
  writeRequestHeader(b, 0, r);
  return b;
}

/** Writes a 28-byte request header at `at` (for building header+payload in one buffer). */
export function writeRequestHeader(b: Buffer, at: number, r: Request): void {
  b.writeUInt32BE(REQUEST_MAGIC, at);
  b.writeUInt16BE(r.flags, at + 4);
  b.writeUInt16BE(r.type, at + 6);
  b.writeBigUInt64BE(r.cookie, at + 8);
  b.writeBigUInt64BE(r.offset, at + 16);
  b.writeUInt32BE(r.length >>> 0, at + 24);
}

/** Parses a 28-byte request header; returns the magic too so the caller can reject it. */
export function decodeRequestHeader(b: Buffer, at = 0): Request & { magic: number } {
  return {
    magic: b.readUInt32BE(at),
    flags: b.readUInt16BE(at + 4),
    type: b.readUInt16BE(at + 6),
    cookie: b.readBigUInt64BE(at + 8),
    offset: b.readBigUInt64BE(at + 16),
    length: b.readUInt32BE(at + 24),
  };
}

export function encodeSimpleReply(r: SimpleReply): Buffer {
  const b = Buffer.allocUnsafe(SIMPLE_REPLY_SIZE);
  writeSimpleReply(b, 0, r);
  return b;
}

export function writeSimpleReply(b: Buffer, at: number, r: SimpleReply): void {
  b.writeUInt32BE(SIMPLE_REPLY_MAGIC, at);
  b.writeUInt32BE(r.error >>> 0, at + 4);
  b.writeBigUInt64BE(r.cookie, at + 8);
}

export function decodeSimpleReply(b: Buffer, at = 0): SimpleReply & { magic: number } {
  return { magic: b.readUInt32BE(at), error: b.readUInt32BE(at + 4), cookie: b.readBigUInt64BE(at + 8) };
}
