/**
 * A killed sftp-server between a write and its fsync: the server (OpenSSH's external
 * sftp-server) answered the WRITE, then is frozen (SIGSTOP) and "loses" the unsynced write
 * (its range in the file on the server is put back as it was, as a crash that drops the
 * page cache would); the NBD client's FLUSH is sent to the frozen server, which never
 * answers it; then every sftp-server is SIGKILLed. serve must reconnect, replay the write
 * (no completed fsync covered it) and only then complete the flush: the ciphertext is back
 * in the file on the server and a fresh serve reads the data. Fails if replay forgets writes
 * whose fsync was sent but not completed.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { openTarget } from '../../src/backend/open-target.js';
import type { BlockDevice } from '../../src/block/block-device.js';
import { killAll } from '../../src/cli/bench/process-tree.js';
import { startNbdcrypt, type NbdcryptProc } from '../../peers/nbdcrypt.js';
import { sftpVolume, type SftpVolume } from '../../peers/sftp-volume.js';
import { requireTool, run, waitFor } from '../../peers/tools.js';

const MiB = 1024 * 1024;
const SIZE = 64 * MiB;
/** Where format puts the LUKS2 data segment (its default 16 MiB header area). */
const DATA_OFFSET = 16 * MiB;
const OFFSET = 5 * MiB + 4096;
const LENGTH = MiB + 8192;

function fileRange(file: string, offset: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  const fd = openSync(file, 'r');
  try {
    assert.equal(readSync(fd, buf, 0, length, offset), length);
  } finally {
    closeSync(fd);
  }
  return buf;
}

function putRange(file: string, offset: number, data: Buffer): void {
  const fd = openSync(file, 'r+');
  try {
    writeSync(fd, data, 0, data.length, offset);
  } finally {
    closeSync(fd);
  }
}

/** Bytes this machine's TCP sockets have sent to `port` so far (ss -i bytes_sent). */
function bytesSentTo(port: number): number {
  const out = run(requireTool('ss', 'iproute2'), ['-tinH', 'state', 'established', `( dport = :${port} )`]).stdout;
  return [...out.matchAll(/bytes_sent:(\d+)/g)].reduce((sum, m) => sum + Number(m[1]), 0);
}

describe('sftp-server killed between a write and its fsync', { timeout: 180_000 }, () => {
  let v: SftpVolume;
  let srv: NbdcryptProc | undefined;
  let client: BlockDevice | undefined;
  let frozen: number[] = [];
  before(async () => {
    // The external sftp-server: one process per SFTP channel, which the test can freeze and kill.
    v = await sftpVolume(SIZE, { sshd: { restricted: false, sftpServer: '/usr/lib/openssh/sftp-server' } });
  });
  after(async () => {
    for (const p of frozen) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await client?.close().catch(() => undefined);
    await srv?.stop();
    await v?.stop();
  });

  it('serve reconnects, replays the write no completed fsync covered, then completes the flush', async () => {
    srv = await startNbdcrypt(v.serveArgs(), { env: v.env, timeoutMs: 60_000 });
    client = await openTarget(srv.uri());
    const at = DATA_OFFSET + OFFSET;
    const before = fileRange(v.file, at, LENGTH);
    const data = randomBytes(LENGTH);
    await client.write(OFFSET, data);
    const cipher = fileRange(v.file, at, LENGTH);
    assert.ok(!cipher.equals(before), 'the server answered the write: its ciphertext is in the file');
    assert.ok(!cipher.equals(data), 'ciphertext, not the plaintext');

    frozen = v.sshd.connectionProcesses('sftp-server');
    assert.ok(frozen.length >= 1, 'sftp-server processes serve the channels');
    for (const p of frozen) process.kill(p, 'SIGSTOP');
    // The frozen server loses the write it answered but never synced.
    putRange(v.file, at, before);

    const sent = bytesSentTo(v.sshd.port);
    let flushed = false;
    const flushing = client.flush().then(() => (flushed = true));
    await waitFor('the fsync to leave serve for the frozen server', () => bytesSentTo(v.sshd.port) > sent, 10_000, 10);
    assert.equal(flushed, false, 'a frozen server cannot complete the fsync');
    assert.equal(srv.proc.stderr().match(/reconnected after/g), null, 'no reconnect yet');
    await killAll(frozen, 'sftp-server to die');
    frozen = [];

    await flushing;
    assert.ok(fileRange(v.file, at, LENGTH).equals(cipher), 'the replayed write is back in the file on the server, before the flush completed');
    assert.match(srv.proc.stderr(), /reconnected after .*; replayed [1-9]\d* unflushed writes/);
    await client.close();
    client = undefined;
    assert.equal(await srv.stop(), 0);
    assert.ok(fileRange(v.file, at, LENGTH).equals(cipher), 'and stays after a clean exit');

    srv = await startNbdcrypt(v.serveArgs(), { env: v.env, timeoutMs: 60_000 });
    client = await openTarget(srv.uri(), { readOnly: true });
    assert.ok((await client.read(OFFSET, LENGTH)).equals(data), 'a fresh serve reads the data back');
    await client.close();
    client = undefined;
    assert.equal(await srv.stop(), 0);
    srv = undefined;
  });
});
