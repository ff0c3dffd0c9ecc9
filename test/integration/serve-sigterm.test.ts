/**
 * SIGTERM during heavy writes: a raw NBD writer (4 connections, 32 writes in flight each,
 * a quarter of them unaligned) records which writes `nbdcrypt serve` acknowledged; serve gets
 * SIGTERM mid-stream, finishes what is in flight, flushes the remote (over ssh) and exits 0.
 * After a restart every acknowledged write reads back exactly. Replies that arrive after the
 * signal show the requests in flight were finished, not dropped.
 */
import assert from 'node:assert/strict';
import { createCipheriv } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Cmd } from '../../src/nbd/protocol.js';
import { RawConn } from '../nbd/raw-nbd.js';
import { startNbdcrypt, type NbdcryptProc } from '../../peers/nbdcrypt.js';
import { remoteVolume, type RemoteVolume } from '../../peers/remote-volume.js';
import { MiB } from './serve-remote.js';

const SLOT = 64 * 1024;
const CONNS = 4;
const DEPTH = 32;
const PATTERN_KEY = Buffer.alloc(16, 7);

/** Deterministic pseudo-random content of a slot (AES-CTR keystream, IV = slot number). */
function slotData(slot: number): Buffer {
  const iv = Buffer.alloc(16);
  iv.writeUInt32BE(slot, 0);
  return createCipheriv('aes-128-ctr', PATTERN_KEY, iv).update(Buffer.alloc(SLOT));
}

/** The byte range of its slot a write covers: every 4th one unaligned (read-modify-write). */
function range(slot: number): { offset: number; length: number } {
  return slot % 4 === 3 ? { offset: slot * SLOT + 1000, length: SLOT - 3000 } : { offset: slot * SLOT, length: SLOT };
}

interface Outcome {
  acked: number[];
  failed: number;
  repliesAfterSignal: number;
}

/** Writes slots conn, conn+CONNS, ... until the server closes the connection. */
async function writer(address: string, conn: number, slots: number, signalled: () => boolean, onAck: () => void): Promise<Outcome> {
  const c = await RawConn.open(address);
  await c.go('disk');
  const out: Outcome = { acked: [], failed: 0, repliesAfterSignal: 0 };
  let next = conn;
  let inFlight = 0;
  try {
    for (;;) {
      while (inFlight < DEPTH && next < slots) {
        const { offset, length } = range(next);
        c.request(Cmd.WRITE, BigInt(next), offset, length, 0, slotData(next).subarray(offset - next * SLOT, offset - next * SLOT + length));
        next += CONNS;
        inFlight++;
      }
      if (inFlight === 0) break;
      const r = await c.readSimpleReply(60_000);
      inFlight--;
      if (signalled()) out.repliesAfterSignal++;
      if (r.error === 0) {
        out.acked.push(Number(r.cookie));
        onAck();
      } else out.failed++;
    }
  } catch {
    // The server closed the connection (shutdown): whatever got no reply is not acknowledged.
  } finally {
    c.destroy();
  }
  return out;
}

describe('SIGTERM during heavy writes', { timeout: 240_000 }, () => {
  let vol: RemoteVolume;
  let srv: NbdcryptProc | undefined;
  before(async () => {
    vol = await remoteVolume(256 * MiB);
  });
  after(async () => {
    await srv?.stop();
    await vol?.stop();
  });

  it('every acknowledged write is there after a restart', async () => {
    srv = await startNbdcrypt(vol.serveArgs(), { env: vol.env, timeoutMs: 60_000 });
    const slots = Math.floor((256 - 16) * MiB / SLOT);
    let signalled = false;
    // Signal once a quarter of the writes are acknowledged, however fast the machine is.
    let acks = 0;
    let quarterDone!: () => void;
    const quarter = new Promise<void>((r) => (quarterDone = r));
    const onAck = () => {
      if (++acks === Math.floor(slots / 4)) quarterDone();
    };
    const writers = Array.from({ length: CONNS }, (_, i) => writer(srv!.address, i, slots, () => signalled, onAck));
    await Promise.race([quarter, Promise.all(writers)]);
    signalled = true;
    srv.proc.child.kill('SIGTERM');
    const outcomes = await Promise.all(writers);
    assert.equal(await srv.proc.exited, 0, `serve exits 0 after SIGTERM: ${srv.proc.stderr()}`);
    srv = undefined;
    const acked = outcomes.flatMap((o) => o.acked);
    const after = outcomes.reduce((n, o) => n + o.repliesAfterSignal, 0);
    process.stderr.write(`acknowledged ${acked.length} of ${slots} writes; ${after} replies after SIGTERM; ${outcomes.reduce((n, o) => n + o.failed, 0)} refused\n`);
    assert.ok(acked.length >= 100, `only ${acked.length} writes acknowledged before SIGTERM: too few to test`);
    assert.ok(acked.length < slots, 'SIGTERM landed after the writer had finished: nothing was in flight');

    srv = await startNbdcrypt(vol.serveArgs(), { env: vol.env, timeoutMs: 60_000 });
    const c = await RawConn.open(srv.address);
    await c.go('disk');
    // Pipelined reads; replies come in any order, so the cookie (the slot) says which.
    let bad = 0;
    let sent = 0;
    for (let done = 0; done < acked.length; done++) {
      while (sent < acked.length && sent - done < DEPTH) {
        const { offset, length } = range(acked[sent]!);
        c.request(Cmd.READ, BigInt(acked[sent]!), offset, length);
        sent++;
      }
      const r = await c.readSimpleReply(30_000);
      assert.equal(r.error, 0);
      const slot = Number(r.cookie);
      const { offset, length } = range(slot);
      const data = await c.read(length, 30_000);
      if (!data.equals(slotData(slot).subarray(offset - slot * SLOT, offset - slot * SLOT + length))) bad++;
    }
    c.destroy();
    assert.equal(bad, 0, `${bad} of ${acked.length} acknowledged writes are missing or wrong after the restart`);
    assert.equal(await srv.stop(), 0);
    srv = undefined;
  });
});
