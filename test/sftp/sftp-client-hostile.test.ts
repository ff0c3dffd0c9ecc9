/**
 * The SFTP client against a fake server that plays what no real server sends: answers cut at
 * every byte boundary, malformed packets (too long, too short, unknown type or id, DATA
 * longer than asked) and a channel that closes under pending requests. A malformed packet
 * must end the channel with a clear message and fail every pending request as unanswered
 * (no numeric code); split answers must land byte for byte, DATA straight in its buffer.
 */
import assert from 'node:assert/strict';
import { Duplex } from 'node:stream';
import { describe, it } from 'node:test';
import { SftpClient } from '../../src/sftp/sftp-client.js';
import { MAX_PACKET } from '../../src/sftp/sftp-frames.js';
import { describeStatus, statusOf } from '../../src/sftp/sftp-status.js';
import { FXP, PFLAG, type FileAttrs } from '../../src/sftp/sftp-wire.js';

type Field = Buffer | string | number | bigint;

/** A server packet: length, type, then uint32 numbers, uint64 bigints and length-prefixed strings. */
function packet(type: number, ...fields: Field[]): Buffer {
  const parts = fields.map((f) => {
    if (typeof f === 'number') return u32(f);
    if (typeof f === 'bigint') {
      const b = Buffer.alloc(8);
      b.writeBigUInt64BE(f);
      return b;
    }
    const s = Buffer.from(f);
    return Buffer.concat([u32(s.length), s]);
  });
  const body = Buffer.concat([Buffer.from([type]), ...parts]);
  return Buffer.concat([u32(body.length), body]);
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

/** The fake server's end: what the client sent, and a way to answer. */
interface FakePeer {
  channel: Duplex;
  sent: Buffer[];
  answer(bytes: Buffer): void;
}

function fakePeer(): FakePeer {
  const sent: Buffer[] = [];
  const channel = new Duplex({
    read() {},
    write(chunk: Buffer, _enc, cb) {
      sent.push(chunk);
      cb();
    },
  });
  return { channel, sent, answer: (b) => channel.push(b) };
}

async function started(extensions: string[] = []): Promise<{ peer: FakePeer; client: SftpClient }> {
  const peer = fakePeer();
  const starting = SftpClient.start(peer.channel);
  peer.answer(packet(FXP.VERSION, 3, ...extensions));
  const client = await starting;
  assert.deepEqual([...peer.sent[0]!], [0, 0, 0, 5, FXP.INIT, 0, 0, 0, 3], 'INIT, version 3');
  return { peer, client };
}

const settled = <T>(f: (cb: (err: Error | undefined, v: T) => void) => void): Promise<{ err: Error | undefined; v: T }> =>
  new Promise((resolve) => f((err, v) => resolve({ err, v })));

/** Pending requests of one kind each (ids 0..4), and the answers a correct server gives them. */
function exchange(client: SftpClient, into: Buffer) {
  const results = Promise.all([
    settled<Buffer>((cb) => client.open('/disk.img', PFLAG.READ, cb)),
    settled<FileAttrs>((cb) => client.fstat(Buffer.from('h1'), cb)),
    settled<number>((cb) => client.read(Buffer.from('h1'), 4096, into, 3, 40, cb)),
    settled<void>((cb) => client.fsync(Buffer.from('h1'), (err) => cb(err, undefined))),
    settled<void>((cb) => client.remove('/gone', (err) => cb(err, undefined))),
  ]);
  const payload = Buffer.from('0123456789abcdefghijklmnopqrstuvwxyzABCD');
  const answers = Buffer.concat([
    packet(FXP.HANDLE, 0, 'h1'),
    packet(FXP.ATTRS, 1, 0x1 | 0x4, 5n * 2n ** 32n + 7n, 0o100600),
    packet(FXP.DATA, 2, payload),
    packet(FXP.STATUS, 3, 0, 'Success', ''),
    packet(FXP.STATUS, 4, 2, 'No such file', ''),
  ]);
  return { results, payload, answers };
}

async function checkExchange(cut: (answers: Buffer) => Buffer[]): Promise<void> {
  const { peer, client } = await started();
  const into = Buffer.alloc(50, 0xee);
  const { results, payload, answers } = exchange(client, into);
  for (const c of cut(answers)) peer.answer(c);
  const [open, fstat, read, fsync, remove] = await results;
  assert.equal(open.err, undefined);
  assert.equal(open.v.toString(), 'h1');
  assert.deepEqual([fstat.err, fstat.v.size, fstat.v.mode], [undefined, 5 * 2 ** 32 + 7, 0o100600], 'ATTRS: 64-bit size and mode');
  assert.deepEqual([read.err, read.v], [undefined, 40]);
  assert.ok(into.subarray(3, 43).equals(payload), 'DATA landed at its offset in the destination');
  assert.ok(into.subarray(0, 3).every((b) => b === 0xee) && into.subarray(43).every((b) => b === 0xee), 'nothing outside it was touched');
  assert.equal(fsync.err, undefined);
  assert.equal(statusOf(remove.err), 2, 'STATUS carries the server code');
  assert.equal(describeStatus(remove.err!), 'SSH_FX_NO_SUCH_FILE: No such file');
  client.destroy();
}

describe('SFTP client framing', () => {
  it('parses answers cut at every byte boundary, DATA straight into the read buffer', async () => {
    const probe = exchange((await started()).client, Buffer.alloc(50));
    const total = probe.answers.length;
    for (let k = 1; k < total; k++) await checkExchange((a) => [a.subarray(0, k), a.subarray(k)]);
    await checkExchange((a) => Array.from({ length: a.length }, (_, i) => a.subarray(i, i + 1)));
    await checkExchange((a) => [a]);
  });

  it('sends a small WRITE as one packet', async () => {
    const { peer, client } = await started();
    const data = Buffer.from('xxhello worldxx');
    const done = settled<void>((cb) => client.write(Buffer.from('hh'), 2 ** 33 + 5, data, 2, 11, (err) => cb(err, undefined)));
    const [header, ...rest] = peer.sent.slice(1);
    assert.equal(rest.length, 0);
    assert.equal(header!.length, 4 + 1 + 4 + 4 + 2 + 8 + 4 + 11);
    assert.equal(header!.readUInt32BE(0), header!.length - 4, 'the length counts the payload');
    assert.equal(header![4], FXP.WRITE);
    assert.equal(header!.readBigUInt64BE(15), 2n ** 33n + 5n);
    assert.equal(header!.readUInt32BE(23), 11);
    assert.equal(header!.subarray(27).toString(), 'hello world');
    peer.answer(packet(FXP.STATUS, 0, 0));
    assert.equal((await done).err, undefined);
  });

  it('sends a large WRITE as a full first SSH packet, then the rest of the payload uncopied', async () => {
    const { peer, client } = await started();
    const data = Buffer.alloc(300 * 1024, 7);
    data.write('end', data.length - 3);
    const done = settled<void>((cb) => client.write(Buffer.from('hh'), 0, data, 1000, 200 * 1024, (err) => cb(err, undefined)));
    const [first, payload] = peer.sent.slice(1);
    assert.equal(first!.length, 32 * 1024, 'the header fills the first packet with the payload head');
    assert.equal(first!.readUInt32BE(0), 4 + 1 + 4 + 4 + 2 + 8 + 4 + 200 * 1024 - 4);
    assert.equal(payload!.buffer, data.buffer, 'the rest is a view of the caller buffer');
    assert.equal(payload!.byteOffset - data.byteOffset, 1000 + 32 * 1024 - 27);
    assert.equal(payload!.length, 200 * 1024 - (32 * 1024 - 27));
    peer.answer(packet(FXP.STATUS, 0, 0));
    assert.equal((await done).err, undefined);
  });

  it('asks for limits@openssh.com when offered and reads the four numbers', async () => {
    const peer = fakePeer();
    const starting = SftpClient.start(peer.channel);
    peer.answer(packet(FXP.VERSION, 3, 'limits@openssh.com', '1', 'fsync@openssh.com', '1'));
    await new Promise((r) => setImmediate(r));
    const ask = peer.sent[1]!;
    assert.equal(ask[4], FXP.EXTENDED);
    assert.equal(ask.subarray(13).toString(), 'limits@openssh.com');
    peer.answer(packet(FXP.EXTENDED_REPLY, ask.readUInt32BE(5), 262144n, 261120n, 261120n, 0n));
    const client = await starting;
    assert.deepEqual(client.limits, { maxPacketLength: 262144, maxReadLength: 261120, maxWriteLength: 261120, maxOpenHandles: 0 });
    assert.ok(client.extensions.has('fsync@openssh.com'));
    client.destroy();
  });
});

describe('SFTP client against a hostile server', () => {
  const hostile: [string, Buffer, RegExp][] = [
    ['a length beyond the limit', Buffer.concat([u32(MAX_PACKET + 1), Buffer.from([FXP.DATA]), u32(2)]), /longer than the \d+ accepted/],
    ['a length below a type and id', Buffer.concat([u32(3), Buffer.from([FXP.STATUS, 0, 0, 0, 0, 0])]), /shorter than a type and id/],
    ['an unknown packet type', packet(99, 2, 0), /unknown packet type 99/],
    ['DATA longer than the read asked for', packet(FXP.DATA, 2, Buffer.alloc(41)), /DATA of 41 bytes answers a read of 40/],
    ['DATA whose data length disagrees with the packet', Buffer.concat([packet(FXP.DATA, 2, Buffer.alloc(10)).subarray(0, 9), u32(9), Buffer.alloc(10)]), /says it holds 9/],
    ['an answer to no pending request', packet(FXP.STATUS, 77, 0), /answers request 77, which is not pending/],
    ['the wrong kind of answer', packet(FXP.HANDLE, 2, 'h'), /type 102 answers request 2, which expects read/],
    ['a STATUS without its code', packet(FXP.STATUS, 3), /shorter than its fields/],
  ];
  for (const [what, bytes, message] of hostile) {
    it(`ends the channel on ${what}, failing every pending request without a code`, async () => {
      const { peer, client } = await started();
      let closed = false;
      client.on('close', () => (closed = true));
      const errors: Error[] = [];
      client.on('error', (e: Error) => errors.push(e));
      const { results } = exchange(client, Buffer.alloc(50));
      peer.answer(bytes);
      for (const r of await results) {
        assert.ok(r.err, 'failed');
        assert.equal(statusOf(r.err), undefined, 'no numeric code: not an answer');
        assert.match(r.err.message, /^SFTP server sent a malformed packet: /);
        assert.match(r.err.message, message);
      }
      assert.equal(errors.length, 1, 'one error event');
      await new Promise((r) => setImmediate(r));
      assert.ok(closed && peer.channel.destroyed, 'the channel is gone');
      const late = await settled<FileAttrs>((cb) => client.stat('/x', cb));
      assert.equal(statusOf(late.err), undefined, 'later requests fail at once');
    });
  }

  it('fails every pending request without a code when the channel closes', async () => {
    const { peer, client } = await started();
    const { results } = exchange(client, Buffer.alloc(50));
    // Half an answer, then the link goes.
    peer.answer(packet(FXP.HANDLE, 0, 'h1').subarray(0, 7));
    peer.channel.destroy();
    for (const r of await results) {
      assert.ok(r.err);
      assert.equal(statusOf(r.err), undefined);
      assert.match(r.err.message, /SFTP channel closed/);
    }
  });

  it('fails to start when the server speaks another version, closes first or never answers', async () => {
    const peer = fakePeer();
    const starting = SftpClient.start(peer.channel);
    peer.answer(packet(FXP.VERSION, 6));
    await assert.rejects(starting, /speaks SFTP version 6, not 3/);
    const mute = fakePeer();
    const waiting = SftpClient.start(mute.channel);
    mute.channel.destroy();
    await assert.rejects(waiting, /SFTP channel closed/);
    const silent = fakePeer();
    await assert.rejects(SftpClient.start(silent.channel, 50), /no answer to SFTP INIT within 50 ms/);
    assert.ok(silent.channel.destroyed, 'a server that never answers loses its channel');
  });
});
