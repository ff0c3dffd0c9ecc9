/**
 * SFTP v3 packets of the subset nbdcrypt uses: request encoders and answer decoders
 * (draft-ietf-secsh-filexfer-02; extensions from OpenSSH's PROTOCOL file; see docs/sftp.md,
 * Our client). Every packet is `uint32 length, byte type, ...`; requests and answers but
 * VERSION carry a uint32 request id after the type. Decoders throw WireError on a packet
 * shorter than its fields say: the peer may be hostile, so nothing is trusted.
 */

export const FXP = {
  INIT: 1,
  VERSION: 2,
  OPEN: 3,
  CLOSE: 4,
  READ: 5,
  WRITE: 6,
  FSTAT: 8,
  FSETSTAT: 10,
  REMOVE: 13,
  STAT: 17,
  STATUS: 101,
  HANDLE: 102,
  DATA: 103,
  NAME: 104,
  ATTRS: 105,
  EXTENDED: 200,
  EXTENDED_REPLY: 201,
} as const;

/** SSH_FXF_* open flags. */
export const PFLAG = { READ: 0x01, WRITE: 0x02, APPEND: 0x04, CREAT: 0x08, TRUNC: 0x10, EXCL: 0x20 } as const;

const ATTR = { SIZE: 0x1, UIDGID: 0x2, PERMISSIONS: 0x4, ACMODTIME: 0x8, EXTENDED: 0x80000000 } as const;

/** The protocol version we speak. */
export const SFTP_VERSION = 3;

/** Bytes of a WRITE request before its payload, for a handle of `handleLength` bytes. */
export const writeHeaderLength = (handleLength: number): number => 4 + 1 + 4 + 4 + handleLength + 8 + 4;

/** A malformed packet: the channel cannot be trusted any more. */
export class WireError extends Error {}

export interface FileAttrs {
  size?: number;
  uid?: number;
  gid?: number;
  /** st_mode: file type and permission bits. */
  mode?: number;
  atime?: number;
  mtime?: number;
}

/** limits@openssh.com answer; 0 means no limit stated. */
export interface SftpLimits {
  maxPacketLength: number;
  maxReadLength: number;
  maxWriteLength: number;
  maxOpenHandles: number;
}

type Field = string | Buffer | { u32: number } | { u64: number };

/** One request packet: length, type, id (INIT: version), then the fields. */
export function encode(type: number, id: number, fields: Field[], trailing = 0): Buffer {
  let len = 1 + 4;
  for (const f of fields) len += typeof f === 'string' ? 4 + Buffer.byteLength(f) : Buffer.isBuffer(f) ? 4 + f.length : 'u32' in f ? 4 : 8;
  const b = Buffer.allocUnsafe(4 + len);
  // `trailing`: payload bytes sent after this buffer as their own write (WRITE's data).
  b.writeUInt32BE(len + trailing, 0);
  b[4] = type;
  b.writeUInt32BE(id >>> 0, 5);
  let p = 9;
  for (const f of fields) {
    if (typeof f === 'string' || Buffer.isBuffer(f)) {
      const bytes = typeof f === 'string' ? Buffer.from(f) : f;
      b.writeUInt32BE(bytes.length, p);
      bytes.copy(b, p + 4);
      p += 4 + bytes.length;
    } else if ('u32' in f) {
      b.writeUInt32BE(f.u32 >>> 0, p);
      p += 4;
    } else {
      writeU64(b, f.u64, p);
      p += 8;
    }
  }
  return b;
}

function writeU64(b: Buffer, v: number, at: number): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`not a file offset: ${v}`);
  b.writeUInt32BE(Math.floor(v / 0x100000000), at);
  b.writeUInt32BE(v >>> 0, at + 4);
}

export const encodeInit = (): Buffer => encode(FXP.INIT, SFTP_VERSION, []);
/** OPEN with empty attrs (the server's default mode for a created file). */
export const encodeOpen = (id: number, path: string, pflags: number): Buffer => encode(FXP.OPEN, id, [path, { u32: pflags }, { u32: 0 }]);
export const encodeClose = (id: number, handle: Buffer): Buffer => encode(FXP.CLOSE, id, [handle]);
export const encodeRead = (id: number, handle: Buffer, offset: number, length: number): Buffer => encode(FXP.READ, id, [handle, { u64: offset }, { u32: length }]);
/** WRITE up to the data's length field: the `length` payload bytes follow as a separate write. */
export const encodeWriteHeader = (id: number, handle: Buffer, offset: number, length: number): Buffer =>
  encode(FXP.WRITE, id, [handle, { u64: offset }, { u32: length }], length);
export const encodeFstat = (id: number, handle: Buffer): Buffer => encode(FXP.FSTAT, id, [handle]);
export const encodeStat = (id: number, path: string): Buffer => encode(FXP.STAT, id, [path]);
/** FSETSTAT of the size alone: truncates or extends (sparse) the file. */
export const encodeFsetstatSize = (id: number, handle: Buffer, size: number): Buffer => encode(FXP.FSETSTAT, id, [handle, { u32: ATTR.SIZE }, { u64: size }]);
export const encodeRemove = (id: number, path: string): Buffer => encode(FXP.REMOVE, id, [path]);
export const encodeFsync = (id: number, handle: Buffer): Buffer => encode(FXP.EXTENDED, id, ['fsync@openssh.com', handle]);
export const encodeLimits = (id: number): Buffer => encode(FXP.EXTENDED, id, ['limits@openssh.com']);

/** Reads the fields of one packet body (after length, type and id). */
export class Reader {
  private p = 0;
  constructor(
    private readonly b: Buffer,
    private readonly what: string,
  ) {}

  get left(): number {
    return this.b.length - this.p;
  }

  u32(): number {
    this.need(4);
    const v = this.b.readUInt32BE(this.p);
    this.p += 4;
    return v;
  }

  u64(): number {
    const hi = this.u32();
    const lo = this.u32();
    return hi * 0x100000000 + lo;
  }

  bytes(): Buffer {
    const n = this.u32();
    this.need(n);
    const v = this.b.subarray(this.p, this.p + n);
    this.p += n;
    return v;
  }

  string(): string {
    return this.bytes().toString('utf8');
  }

  private need(n: number): void {
    if (this.left < n) throw new WireError(`${this.what} packet is shorter than its fields`);
  }
}

/** VERSION body (after the version number): extension name -> data. */
export function decodeExtensions(r: Reader): Map<string, string> {
  const ext = new Map<string, string>();
  while (r.left > 0) ext.set(r.string(), r.string());
  return ext;
}

/** STATUS body: code, then message and language tag (optional for v3 servers that omit them). */
export function decodeStatus(r: Reader): { code: number; message: string } {
  const code = r.u32();
  const message = r.left > 0 ? r.string() : '';
  return { code, message };
}

/** ATTRS (flags-driven; a field is present only when its flag is). */
export function decodeAttrs(r: Reader): FileAttrs {
  const flags = r.u32();
  const a: FileAttrs = {};
  if (flags & ATTR.SIZE) a.size = r.u64();
  if (flags & ATTR.UIDGID) {
    a.uid = r.u32();
    a.gid = r.u32();
  }
  if (flags & ATTR.PERMISSIONS) a.mode = r.u32();
  if (flags & ATTR.ACMODTIME) {
    a.atime = r.u32();
    a.mtime = r.u32();
  }
  if (flags & ATTR.EXTENDED) for (let n = r.u32(); n > 0; n--) r.string(), r.string();
  return a;
}

/** limits@openssh.com EXTENDED_REPLY body. */
export function decodeLimits(r: Reader): SftpLimits {
  return { maxPacketLength: r.u64(), maxReadLength: r.u64(), maxWriteLength: r.u64(), maxOpenHandles: r.u64() };
}
