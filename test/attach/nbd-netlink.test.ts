// The netlink encoding of nbdcrypt's attach, checked three ways: against the constants of the
// kernel's own uapi header (linux-libc-dev), against the live kernel's generic-netlink
// controller (this machine has netlink but no nbd module), and against messages laid out
// byte by byte here from the documented format.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, existsSync, readFileSync } from 'node:fs';
import { NbdNetlink, NBD_ATTR, NBD_CMD, NBD_SOCK_FD, NBD_SOCK_ITEM, NBD_DEVICE_ITEM, NBD_DEVICE_INDEX, NBD_DEVICE_CONNECTED, NBD_GENL_VERSION, connectAttrs, parseDeviceList } from '../../src/attach/nbd-netlink.js';
import { decodeAttrs, decodeReplies, encodeAttrs, encodeGenl, NLA_F_NESTED } from '../../src/attach/netlink-message.js';
import { loadNative, nativeLoadError } from '../../src/native-addon.js';
import { chooseDevice } from '../../src/attach/kernel-attach.js';
import { isNbdcryptError } from '../../src/errors.js';

const UAPI = '/usr/include/linux/nbd-netlink.h';

/** enum { A, B, C } blocks of a C header → name → value (implicit numbering only, as that header uses). */
function enumValues(header: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of header.matchAll(/enum\s*\{([^}]*)\}/g)) {
    let v = 0;
    for (const raw of m[1]!.split(',')) {
      const name = raw.replace(/\/\*.*?\*\//gs, '').trim();
      if (!name) continue;
      const eq = /^(\w+)\s*=\s*(\d+)$/.exec(name);
      if (eq) v = Number(eq[2]);
      out.set(eq ? eq[1]! : name, v++);
    }
  }
  return out;
}

test('attribute, command and item numbers equal the kernel uapi header', () => {
  const header = readFileSync(UAPI, 'utf8');
  const e = enumValues(header);
  for (const [k, v] of Object.entries(NBD_ATTR)) assert.equal(v, e.get(`NBD_ATTR_${k}`), `NBD_ATTR_${k}`);
  for (const [k, v] of Object.entries(NBD_CMD)) assert.equal(v, e.get(`NBD_CMD_${k}`), `NBD_CMD_${k}`);
  assert.equal(NBD_SOCK_ITEM, e.get('NBD_SOCK_ITEM'));
  assert.equal(NBD_SOCK_FD, e.get('NBD_SOCK_FD'));
  assert.equal(NBD_DEVICE_ITEM, e.get('NBD_DEVICE_ITEM'));
  assert.equal(NBD_DEVICE_INDEX, e.get('NBD_DEVICE_INDEX'));
  assert.equal(NBD_DEVICE_CONNECTED, e.get('NBD_DEVICE_CONNECTED'));
  assert.match(header, new RegExp(`#define NBD_GENL_VERSION\\s+0x${NBD_GENL_VERSION}\\b`));
  assert.match(header, /#define NBD_GENL_FAMILY_NAME\s+"nbd"/);
});

test('a CONNECT request is laid out as netlink + genl headers and padded, nested attributes', () => {
  const msg = encodeGenl({
    family: 0x1234,
    flags: 5,
    seq: 7,
    cmd: NBD_CMD.CONNECT,
    version: 1,
    attrs: connectAttrs({ index: 3, sizeBytes: 2 ** 33, blockSize: 4096, timeoutS: 5, deadConnTimeoutS: 300, serverFlags: 0x1ed, backend: 'ab', fds: [9, 10] }),
  });
  const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
  const expected = Buffer.concat([
    hex('00000000 3412 0500 07000000 00000000'), // length patched below, type, flags, seq, port
    hex('01 01 0000'), // CONNECT, version 1
    hex('0800 0100 03000000'), // INDEX u32 3
    hex('0c00 0200 0000000002000000'), // SIZE_BYTES u64 2^33
    hex('0c00 0300 0010000000000000'), // BLOCK_SIZE_BYTES 4096
    hex('0c00 0400 0500000000000000'), // TIMEOUT 5
    hex('0c00 0800 2c01000000000000'), // DEAD_CONN_TIMEOUT 300
    hex('0c00 0500 ed01000000000000'), // SERVER_FLAGS
    hex('0700 0a00 616200 00'), // BACKEND_IDENTIFIER "ab\0" + 1 pad byte
    hex('1c00 0780'), // SOCKETS, nested: 4 + 2 * 12
    hex('0c00 0180 0800 0100 09000000'), // SOCK_ITEM { SOCK_FD 9 }
    hex('0c00 0180 0800 0100 0a000000'), // SOCK_ITEM { SOCK_FD 10 }
  ]);
  expected.writeUInt32LE(expected.length, 0);
  assert.deepEqual(msg, expected);
  assert.equal(NLA_F_NESTED, 0x8000);
});

test('replies: an acknowledgement, an error, and a STATUS device list decode', () => {
  const ack = Buffer.alloc(36);
  ack.writeUInt32LE(36, 0);
  ack.writeUInt16LE(2, 4);
  ack.writeUInt32LE(9, 8);
  const err = Buffer.from(ack);
  err.writeInt32LE(-16, 16);
  assert.deepEqual(decodeReplies(Buffer.concat([ack, err])), [
    { kind: 'error', seq: 9, errno: 0 },
    { kind: 'error', seq: 9, errno: 16 },
  ]);
  const list = encodeAttrs([
    {
      type: NBD_ATTR.DEVICE_LIST,
      nested: [
        { type: NBD_DEVICE_ITEM, nested: [{ type: NBD_DEVICE_INDEX, u32: 0 }, { type: NBD_DEVICE_CONNECTED, u8: 1 }] },
        { type: NBD_DEVICE_ITEM, nested: [{ type: NBD_DEVICE_INDEX, u32: 1 }, { type: NBD_DEVICE_CONNECTED, u8: 0 }] },
      ],
    },
  ]);
  assert.deepEqual(parseDeviceList(decodeAttrs(list)), [
    { index: 0, connected: true },
    { index: 1, connected: false },
  ]);
  assert.throws(() => decodeAttrs(Buffer.from('ff000100', 'hex')), /beyond its message/);
});

test('the live kernel answers our controller request: nlctrl resolves to 0x10, an unknown family to nothing', () => {
  const addon = loadNative();
  assert.ok(addon, `native addon: ${nativeLoadError()}`);
  const fd = addon.netlinkSocket();
  try {
    assert.equal(NbdNetlink.resolveFamily(addon, fd, 'nlctrl'), 0x10);
    // Family names are at most 15 characters (GENL_NAMSIZ - 1); a longer one is EINVAL.
    assert.equal(NbdNetlink.resolveFamily(addon, fd, 'nbdcrypt-nofam'), undefined);
  } finally {
    closeSync(fd);
  }
});

test('opening the nbd family where the module is absent is one ENONBD error', () => {
  let family: boolean;
  try {
    NbdNetlink.open().close();
    family = true;
  } catch (e) {
    assert.ok(isNbdcryptError(e, 'ENONBD'), String(e));
    assert.match((e as Error).message, /modprobe nbd/);
    family = false;
  }
  // This machine has no nbd module (the VM test covers the kernel that has one).
  assert.equal(family, existsSync('/sys/module/nbd'));
});

test('device choice: reattach only to our own waiting binding, refuse others, auto picks ours then a free one', () => {
  const backends: Record<number, string> = { 0: 'other', 1: 'mine' };
  const servers: Record<number, number> = { 0: 1 };
  const connected = new Set([0, 1]);
  const choose = (device: string, backend = 'mine') =>
    chooseDevice(device, backend, (i) => backends[i], () => [0, 1, 2, 3], (i) => connected.has(i), (i) => servers[i]);
  assert.deepEqual(choose('/dev/nbd1'), { index: 1, reattach: true });
  assert.deepEqual(choose('/dev/nbd2'), { index: 2, reattach: false });
  assert.deepEqual(choose('auto'), { index: 1, reattach: true });
  assert.deepEqual(choose('auto', 'new'), { index: 2, reattach: false });
  assert.throws(() => choose('/dev/nbd0'), /bound to another backend \(other\)/);
  servers[1] = 1;
  assert.throws(() => choose('/dev/nbd1'), /served by a running nbdcrypt \(pid 1\)/);
  assert.throws(() => choose('/dev/sda'), /not an nbd device/);
});

test('the server record names the live serve of a device, and a killed one names nobody', async () => {
  const { recordServer, forgetServer, liveServer } = await import('../../src/attach/server-record.js');
  const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(`${tmpdir()}/nbdcrypt-record-`);
  try {
    assert.equal(liveServer(3, dir), undefined);
    recordServer(3, dir);
    assert.equal(liveServer(3, dir), process.pid);
    forgetServer(3, dir);
    assert.equal(liveServer(3, dir), undefined);
    writeFileSync(`${dir}/nbd4.pid`, '2147483646\n'); // a pid no process has: a killed serve
    assert.equal(liveServer(4, dir), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
