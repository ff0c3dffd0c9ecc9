/**
 * `nbdcrypt serve` in front of a remote that stops answering (peers/hostile-nbd-server.ts,
 * stall-before-reply) while a client's READ waits: one SIGTERM must still end it, within
 * the bound serve --help documents (requests in flight 30 s, final flush 10 s), with exit
 * status 0 and the waiting request failed, not left hanging.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Cmd } from '../../src/nbd/protocol.js';
import { startHostileNbdServer, type HostileNbdServer } from '../../peers/hostile-nbd-server.js';
import { startNbdcrypt, type NbdcryptProc } from '../../peers/nbdcrypt.js';
import { waitFor } from '../../peers/tools.js';
import { RawConn } from '../nbd/raw-nbd.js';

describe('serve with a stalled remote', { timeout: 120_000 }, () => {
  let remote: HostileNbdServer | undefined;
  let srv: NbdcryptProc | undefined;
  after(async () => {
    await srv?.stop();
    await remote?.stop();
  });

  it('one SIGTERM ends serve within the documented bound while a request waits on the remote', async () => {
    remote = await startHostileNbdServer({ mode: 'stall-before-reply' });
    srv = await startNbdcrypt(['serve', '--unencrypted', remote.uri]);
    const c = await RawConn.open(srv.address);
    await c.go('disk');
    c.request(Cmd.READ, 1n, 0, 4096);
    const reply = c.readSimpleReply(90_000).catch((e: Error) => e);
    await waitFor('the read to reach the remote', () => remote!.requests > 0, 10_000);
    srv.proc.child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([srv.proc.exited, new Promise<'hung'>((r) => (timer = setTimeout(() => r('hung'), 60_000)))]);
    clearTimeout(timer);
    assert.equal(code, 0, `serve did not exit within 60 s of SIGTERM:\n${srv.proc.stderr()}`);
    assert.match(srv.proc.stderr(), /finishing requests in flight/);
    const r = await reply;
    assert.ok(r instanceof Error || r.error !== 0, 'the waiting READ was not answered with data');
    c.destroy();
    srv = undefined;
  });
});
