/**
 * Generic-netlink messages as bytes, both ways, without sockets (so they can be checked against
 * messages recorded from the kernel). A message is a netlink header (16 bytes: length, type,
 * flags, sequence number, port id, all host-endian), a generic-netlink header (command,
 * version, two reserved bytes), then attributes: each a 4-byte header (length, type) and a
 * payload padded to a multiple of 4. A nested attribute's payload is itself a list of
 * attributes. Layouts: docs/formats.md (Kernel nbd netlink).
 */
import { NbdcryptError } from '../errors.js';

export const NLMSG_HDRLEN = 16;
export const GENL_HDRLEN = 4;
export const NLA_HDRLEN = 4;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLM_F_REQUEST = 0x1;
export const NLM_F_ACK = 0x4;
export const NLA_F_NESTED = 0x8000;
const NLA_TYPE_MASK = 0x3fff;

/** One attribute to encode: a number with its width, a string (NUL-terminated), or nested ones. */
export type Attr =
  | { type: number; u8: number }
  | { type: number; u16: number }
  | { type: number; u32: number }
  | { type: number; u64: number | bigint }
  | { type: number; str: string }
  | { type: number; nested: Attr[] };

const align4 = (n: number): number => (n + 3) & ~3;

function payloadOf(a: Attr): Buffer {
  if ('u8' in a) return Buffer.from([a.u8]);
  if ('u16' in a) {
    const b = Buffer.alloc(2);
    b.writeUInt16LE(a.u16);
    return b;
  }
  if ('u32' in a) {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(a.u32);
    return b;
  }
  if ('u64' in a) {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(a.u64));
    return b;
  }
  if ('str' in a) return Buffer.concat([Buffer.from(a.str, 'utf8'), Buffer.alloc(1)]);
  return encodeAttrs(a.nested);
}

export function encodeAttrs(attrs: Attr[]): Buffer {
  const parts: Buffer[] = [];
  for (const a of attrs) {
    const payload = payloadOf(a);
    const header = Buffer.alloc(NLA_HDRLEN);
    header.writeUInt16LE(NLA_HDRLEN + payload.length, 0);
    header.writeUInt16LE(a.type | ('nested' in a ? NLA_F_NESTED : 0), 2);
    parts.push(header, payload, Buffer.alloc(align4(payload.length) - payload.length));
  }
  return Buffer.concat(parts);
}

export interface GenlRequest {
  family: number;
  flags: number;
  seq: number;
  cmd: number;
  version: number;
  attrs: Attr[];
}

export function encodeGenl(m: GenlRequest): Buffer {
  const body = encodeAttrs(m.attrs);
  const out = Buffer.alloc(NLMSG_HDRLEN + GENL_HDRLEN + body.length);
  out.writeUInt32LE(out.length, 0);
  out.writeUInt16LE(m.family, 4);
  out.writeUInt16LE(m.flags, 6);
  out.writeUInt32LE(m.seq, 8);
  out.writeUInt32LE(0, 12);
  out.writeUInt8(m.cmd, 16);
  out.writeUInt8(m.version, 17);
  body.copy(out, NLMSG_HDRLEN + GENL_HDRLEN);
  return out;
}

/** Attributes by type; a later duplicate replaces an earlier one, as the kernel's parser does. */
export type AttrMap = Map<number, Buffer>;

export function decodeAttrs(buf: Buffer): AttrMap {
  const out: AttrMap = new Map();
  let at = 0;
  while (at + NLA_HDRLEN <= buf.length) {
    const len = buf.readUInt16LE(at);
    const type = buf.readUInt16LE(at + 2) & NLA_TYPE_MASK;
    if (len < NLA_HDRLEN || at + len > buf.length) {
      throw new NbdcryptError('EPROTO', `netlink: attribute ${type} at byte ${at} has length ${len}, beyond its message`);
    }
    out.set(type, buf.subarray(at + NLA_HDRLEN, at + len));
    at += align4(len);
  }
  return out;
}

/** Every nested item of one type, in order (a list such as NBD_ATTR_DEVICE_LIST). */
export function decodeList(buf: Buffer, itemType: number): AttrMap[] {
  const items: AttrMap[] = [];
  let at = 0;
  while (at + NLA_HDRLEN <= buf.length) {
    const len = buf.readUInt16LE(at);
    const type = buf.readUInt16LE(at + 2) & NLA_TYPE_MASK;
    if (len < NLA_HDRLEN || at + len > buf.length) throw new NbdcryptError('EPROTO', `netlink: list item at byte ${at} has length ${len}, beyond its attribute`);
    if (type === itemType) items.push(decodeAttrs(buf.subarray(at + NLA_HDRLEN, at + len)));
    at += align4(len);
  }
  return items;
}

export function attrU32(m: AttrMap, type: number): number | undefined {
  const b = m.get(type);
  return b && b.length >= 4 ? b.readUInt32LE(0) : undefined;
}

export function attrU16(m: AttrMap, type: number): number | undefined {
  const b = m.get(type);
  return b && b.length >= 2 ? b.readUInt16LE(0) : undefined;
}

export function attrU8(m: AttrMap, type: number): number | undefined {
  const b = m.get(type);
  return b && b.length >= 1 ? b.readUInt8(0) : undefined;
}

/** One message out of a datagram from the kernel. */
export type Reply =
  | { kind: 'error'; seq: number; errno: number } // errno 0 is the acknowledgement
  | { kind: 'done'; seq: number }
  | { kind: 'genl'; seq: number; type: number; cmd: number; attrs: AttrMap };

/** Splits a datagram into its messages (the kernel may pack several into one). */
export function decodeReplies(buf: Buffer): Reply[] {
  const out: Reply[] = [];
  let at = 0;
  while (at + NLMSG_HDRLEN <= buf.length) {
    const len = buf.readUInt32LE(at);
    if (len < NLMSG_HDRLEN || at + len > buf.length) throw new NbdcryptError('EPROTO', `netlink: message at byte ${at} has length ${len}, beyond the datagram of ${buf.length}`);
    const type = buf.readUInt16LE(at + 4);
    const seq = buf.readUInt32LE(at + 8);
    const body = buf.subarray(at + NLMSG_HDRLEN, at + len);
    if (type === NLMSG_ERROR) {
      if (body.length < 4) throw new NbdcryptError('EPROTO', 'netlink: error message without an error number');
      const code = body.readInt32LE(0);
      out.push({ kind: 'error', seq, errno: code === 0 ? 0 : -code });
    } else if (type === NLMSG_DONE) {
      out.push({ kind: 'done', seq });
    } else {
      if (body.length < GENL_HDRLEN) throw new NbdcryptError('EPROTO', `netlink: message of type ${type} without a generic-netlink header`);
      out.push({ kind: 'genl', seq, type, cmd: body.readUInt8(0), attrs: decodeAttrs(body.subarray(GENL_HDRLEN)) });
    }
    at += align4(len);
  }
  return out;
}
