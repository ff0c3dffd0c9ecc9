/**
 * The kernel's nbd driver configured over generic netlink (family "nbd", version 1), the way
 * rbd-nbd does it and nbd-client 3.24 does not: CONNECT hands the kernel connected sockets
 * with a dead-connection timeout and a backend identifier; RECONFIGURE gives a device whose
 * server died new sockets (only if the identifier matches, which the kernel enforces);
 * DISCONNECT detaches; STATUS lists devices and whether they are connected.
 * Constants and semantics: docs/formats.md (Kernel nbd netlink).
 */
import { closeSync } from 'node:fs';
import { NbdcryptError } from '../errors.js';
import { loadNative, nativeLoadError, type NativeAddon } from '../native-addon.js';
import {
  attrU16,
  attrU32,
  attrU8,
  decodeList,
  decodeReplies,
  encodeGenl,
  NLM_F_ACK,
  NLM_F_REQUEST,
  type Attr,
  type AttrMap,
} from './netlink-message.js';

const GENL_ID_CTRL = 0x10;
const CTRL_CMD_GETFAMILY = 3;
const CTRL_ATTR_FAMILY_ID = 1;
const CTRL_ATTR_FAMILY_NAME = 2;

export const NBD_GENL_VERSION = 1;
export const NBD_CMD = { CONNECT: 1, DISCONNECT: 2, RECONFIGURE: 3, LINK_DEAD: 4, STATUS: 5 } as const;
export const NBD_ATTR = {
  INDEX: 1,
  SIZE_BYTES: 2,
  BLOCK_SIZE_BYTES: 3,
  TIMEOUT: 4,
  SERVER_FLAGS: 5,
  CLIENT_FLAGS: 6,
  SOCKETS: 7,
  DEAD_CONN_TIMEOUT: 8,
  DEVICE_LIST: 9,
  BACKEND_IDENTIFIER: 10,
} as const;
export const NBD_SOCK_ITEM = 1;
export const NBD_SOCK_FD = 1;
export const NBD_DEVICE_ITEM = 1;
export const NBD_DEVICE_INDEX = 1;
export const NBD_DEVICE_CONNECTED = 2;

export interface ConnectRequest {
  /** Device index (nbdN), or undefined for the first free one. */
  index?: number;
  sizeBytes: number;
  blockSize: number;
  /** Seconds after which the kernel requeues a request on another (or a reconfigured) socket. */
  timeoutS: number;
  /** Seconds the kernel holds I/O while every socket is dead, waiting for RECONFIGURE. */
  deadConnTimeoutS: number;
  /** NBD transmission flags, as the server would advertise them. */
  serverFlags: number;
  backend: string;
  fds: number[];
}

export interface DeviceStatus {
  index: number;
  connected: boolean;
}

const socketsAttr = (fds: number[]): Attr => ({
  type: NBD_ATTR.SOCKETS,
  nested: fds.map((fd) => ({ type: NBD_SOCK_ITEM, nested: [{ type: NBD_SOCK_FD, u32: fd }] })),
});

/** The attributes of a CONNECT request (exported for the encoding tests). */
export function connectAttrs(r: ConnectRequest): Attr[] {
  const attrs: Attr[] = [];
  if (r.index !== undefined) attrs.push({ type: NBD_ATTR.INDEX, u32: r.index });
  attrs.push(
    { type: NBD_ATTR.SIZE_BYTES, u64: r.sizeBytes },
    { type: NBD_ATTR.BLOCK_SIZE_BYTES, u64: r.blockSize },
    { type: NBD_ATTR.TIMEOUT, u64: r.timeoutS },
    { type: NBD_ATTR.DEAD_CONN_TIMEOUT, u64: r.deadConnTimeoutS },
    { type: NBD_ATTR.SERVER_FLAGS, u64: r.serverFlags },
    { type: NBD_ATTR.BACKEND_IDENTIFIER, str: r.backend },
    socketsAttr(r.fds),
  );
  return attrs;
}

/** The attributes of a RECONFIGURE request. */
export function reconfigureAttrs(index: number, backend: string, fds: number[]): Attr[] {
  return [{ type: NBD_ATTR.INDEX, u32: index }, { type: NBD_ATTR.BACKEND_IDENTIFIER, str: backend }, socketsAttr(fds)];
}

export function parseDeviceList(attrs: AttrMap): DeviceStatus[] {
  const list = attrs.get(NBD_ATTR.DEVICE_LIST);
  if (!list) return [];
  return decodeList(list, NBD_DEVICE_ITEM).flatMap((item) => {
    const index = attrU32(item, NBD_DEVICE_INDEX);
    return index === undefined ? [] : [{ index, connected: (attrU8(item, NBD_DEVICE_CONNECTED) ?? 0) !== 0 }];
  });
}

const errnoName: Record<number, string> = { 1: 'EPERM', 2: 'ENOENT', 16: 'EBUSY', 22: 'EINVAL', 28: 'ENOSPC', 95: 'EOPNOTSUPP' };

/** One open generic-netlink socket talking to the nbd family. Synchronous: each call is one short exchange. */
export class NbdNetlink {
  private seq = 1;
  private closed = false;

  private constructor(
    private readonly addon: NativeAddon,
    private readonly fd: number,
    private readonly family: number,
  ) {}

  /** Opens the socket and looks up the family; a kernel without the nbd module is one clear error. */
  static open(): NbdNetlink {
    const addon = loadNative();
    if (!addon) throw new NbdcryptError('ENONBD', `attaching over netlink needs the native addon: ${nativeLoadError()}; use --attach-with nbd-client`);
    const fd = addon.netlinkSocket();
    try {
      const family = NbdNetlink.resolveFamily(addon, fd, 'nbd');
      if (family === undefined) throw new NbdcryptError('ENONBD', 'the kernel has no nbd netlink family (load the nbd module: modprobe nbd)');
      return new NbdNetlink(addon, fd, family);
    } catch (e) {
      closeFd(fd);
      throw e;
    }
  }

  /** The id of a generic-netlink family, or undefined when the kernel has none of that name. */
  static resolveFamily(addon: NativeAddon, fd: number, name: string): number | undefined {
    const ctrl = new NbdNetlink(addon, fd, GENL_ID_CTRL);
    try {
      const reply = ctrl.exchange(CTRL_CMD_GETFAMILY, 1, [{ type: CTRL_ATTR_FAMILY_NAME, str: name }], `look up the ${name} netlink family`);
      return reply && attrU16(reply, CTRL_ATTR_FAMILY_ID);
    } catch (e) {
      if (e instanceof NbdcryptError && / ENOENT/.test(e.message)) return undefined;
      throw e;
    }
  }

  /** Binds a device to `fds`; returns its index. */
  connect(r: ConnectRequest): number {
    const reply = this.exchange(NBD_CMD.CONNECT, NBD_GENL_VERSION, connectAttrs(r), r.index === undefined ? 'connect a free nbd device' : `connect /dev/nbd${r.index}`);
    const index = reply ? attrU32(reply, NBD_ATTR.INDEX) : r.index;
    if (index === undefined) throw new NbdcryptError('EPROTO', 'netlink: the kernel connected a device but did not say which');
    return index;
  }

  /** Replaces dead sockets of a bound device; the backend identifier must match the one given at connect. */
  reconfigure(index: number, backend: string, fds: number[]): void {
    this.exchange(NBD_CMD.RECONFIGURE, NBD_GENL_VERSION, reconfigureAttrs(index, backend, fds), `reconfigure /dev/nbd${index}`);
  }

  disconnect(index: number): void {
    this.exchange(NBD_CMD.DISCONNECT, NBD_GENL_VERSION, [{ type: NBD_ATTR.INDEX, u32: index }], `disconnect /dev/nbd${index}`);
  }

  /** Every nbd device (or one), with whether it has a live configuration. */
  status(index?: number): DeviceStatus[] {
    const reply = this.exchange(NBD_CMD.STATUS, NBD_GENL_VERSION, index === undefined ? [] : [{ type: NBD_ATTR.INDEX, u32: index }], 'query nbd status');
    return reply ? parseDeviceList(reply) : [];
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeFd(this.fd);
  }

  /** Sends one request and reads until its acknowledgement; returns the attributes of a data reply, if any. */
  private exchange(cmd: number, version: number, attrs: Attr[], what: string): AttrMap | undefined {
    if (this.closed) throw new NbdcryptError('ECLOSED', 'netlink socket already closed');
    const seq = this.seq++;
    this.addon.netlinkSend(this.fd, encodeGenl({ family: this.family, flags: NLM_F_REQUEST | NLM_F_ACK, seq, cmd, version, attrs }));
    let data: AttrMap | undefined;
    for (let datagrams = 0; datagrams < 64; datagrams++) {
      for (const r of decodeReplies(this.addon.netlinkRecv(this.fd))) {
        if (r.seq !== seq) continue;
        if (r.kind === 'genl') data = r.attrs;
        else if (r.kind === 'done') return data;
        else if (r.errno === 0) return data;
        else throw new NbdcryptError(r.errno === 1 ? 'EUSAGE' : 'EIO', `cannot ${what}: the kernel said ${errnoName[r.errno] ?? 'errno ' + r.errno}${hint(r.errno)}`);
      }
    }
    throw new NbdcryptError('EPROTO', `cannot ${what}: no acknowledgement from the kernel`);
  }
}

function hint(errno: number): string {
  if (errno === 1) return ' (configuring nbd devices needs root or CAP_SYS_ADMIN)';
  if (errno === 16) return ' (the device is in use: bound to another server, or still being torn down)';
  return '';
}

function closeFd(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}
