/**
 * The ssh2 internals nbdcrypt relies on (src/transport/ssh2-internals.ts): against the
 * installed ssh2 and a real sshd they are all there (the session socket is found, a channel's
 * receive window is raised to 8 MiB, an SFTP channel's to SFTP_WINDOW and kept there while
 * answers stream in, the AES-GCM packets ssh2 sends take their padding from a
 * pooled CSPRNG block and their memory from reused slabs, and sshd accepts them, nothing is logged); against objects that lack them the
 * transport says so in exactly one warning line and patches nothing.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import { join, resolve } from 'node:path';
import { writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { SftpClient } from '../../src/sftp/sftp-client.js';
import { PFLAG } from '../../src/sftp/sftp-wire.js';
import { SshTransport } from '../../src/transport/ssh.js';
import { CHANNEL_WINDOW, SFTP_WINDOW } from '../../src/transport/ssh-window.js';
import { unpooledPacketBytes } from '../../src/transport/ssh-packet-pool.js';
import { Ssh2Patches, SSH2_CHECKED_RANGE, channelWindow, patchPacketAllocation, sessionSocket } from '../../src/transport/ssh2-internals.js';
import { startSshd, type SshdPeer } from '../../peers/sshd.js';
import { waitFor } from '../../peers/tools.js';

/** Runs `fn` with standard error captured; returns what was written. */
async function stderrOf(fn: () => unknown): Promise<string> {
  const write = process.stderr.write;
  let out = '';
  process.stderr.write = ((chunk: string | Uint8Array) => {
    out += chunk.toString();
    return true;
  }) as typeof process.stderr.write;
  try {
    await fn();
  } finally {
    process.stderr.write = write;
  }
  return out;
}

it('package.json pins ssh2 to the range the internals were checked against, and that version is installed', () => {
  const require = createRequire(import.meta.url);
  const root = join(require.resolve('ssh2'), '..', '..');
  const repo = resolve(fileURLToPath(import.meta.url), '../../../..'); // dist/test/transport/x.js → repository
  const pkg = require(join(repo, 'package.json')) as { dependencies: Record<string, string> };
  const installed = (require(join(root, 'package.json')) as { version: string }).version;
  assert.equal(pkg.dependencies.ssh2, SSH2_CHECKED_RANGE);
  assert.match(installed, /^1\.17\.\d+$/, `installed ssh2 ${installed} is outside ${SSH2_CHECKED_RANGE}`);
});

describe('against the installed ssh2 and a real sshd', () => {
  let sshd: SshdPeer;
  let sink: Server;
  let sinkPort: number;
  let sunk = 0;
  let sinkHash = createHash('sha256');
  let knownHosts: string;
  before(async () => {
    sshd = await startSshd();
    knownHosts = join(sshd.dir, 'known_hosts');
    writeFileSync(knownHosts, `${sshd.knownHostsLine}\n`);
    // The channel's far end: accepts and holds connections (direct-tcpip needs a listener),
    // counting what arrives.
    sink = createServer((s) =>
      s.on('error', () => undefined).on('data', (b: Buffer) => {
        sunk += b.length;
        sinkHash.update(b);
      }),
    );
    await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
    sinkPort = (sink.address() as { port: number }).port;
  });
  after(async () => {
    await new Promise<void>((resolve) => sink?.close(() => resolve()));
    await sshd?.stop();
  });

  it('finds the session socket and the channel window, enlarges the window, and logs nothing', async () => {
    const t = new SshTransport({
      host: sshd.host,
      port: sshd.port,
      user: sshd.user,
      identity: [sshd.userKey],
      knownHostsPath: knownHosts,
      sshConfigPath: '/dev/null',
      remote: { host: '127.0.0.1', port: sinkPort },
      sftpRequest: false,
    });
    let ch: unknown;
    const logged = await stderrOf(async () => {
      ch = await t.open();
    });
    try {
      assert.doesNotMatch(logged, /ssh2 internals/, 'no fallback line with the installed ssh2');
      const access = channelWindow(ch);
      assert.notEqual(typeof access, 'string', `channel internals: ${String(access)}`);
      assert.equal((ch as { incoming: { window: number } }).incoming.window, CHANNEL_WINDOW, 'the receive window was raised from ssh2 2 MiB to 8 MiB');
      const client = (ch as { _client: unknown })._client;
      assert.notEqual(typeof sessionSocket(client), 'string', 'Client._sock has the expected shape');
      const cipher = (client as { _protocol: { _cipher: { allocPacket: unknown; constructor: { name: string } } } })._protocol._cipher;
      assert.equal(cipher.constructor.name, 'AESGCMCipherBinding', 'aes128-gcm@openssh.com negotiated');
      assert.equal(patchPacketAllocation(client), true);
      assert.equal((cipher.allocPacket as { name: string }).name, 'gcmAllocPacket', 'the pooled-padding allocation is in place');
      // sshd checks every packet's length, padding and tag: 16 MiB of 32 KiB packets arrive
      // whole and in order, and their memory is mostly reused slabs: sshd grants 2 MiB of
      // window at a time, so packets written later take the slabs of packets already sent.
      const data = randomBytes(16 << 20);
      const fresh = unpooledPacketBytes();
      sunk = 0;
      sinkHash = createHash('sha256');
      await new Promise<void>((resolve, reject) => (ch as { write(b: Buffer, cb: (e?: Error | null) => void): void }).write(data, (e) => (e ? reject(e) : resolve())));
      await waitFor('the sink to receive 16 MiB', () => sunk === data.length, 30_000);
      assert.equal(sinkHash.digest('hex'), createHash('sha256').update(data).digest('hex'), 'the bytes arrive unchanged');
      const grown = unpooledPacketBytes() - fresh;
      assert.ok(grown < 8 << 20, `fresh packet memory for 16 MiB sent: ${grown} bytes (slabs not reused)`);
    } finally {
      (ch as { destroy?: () => void } | undefined)?.destroy?.();
      await t.close();
    }
  });
});

describe('the SFTP channel window, against a real sshd', () => {
  it('starts at SFTP_WINDOW and is topped up as answers arrive (the SFTP client reads in flowing mode)', async () => {
    const sshd = await startSshd();
    const knownHosts = join(sshd.dir, 'known_hosts');
    writeFileSync(knownHosts, `${sshd.knownHostsLine}\n`);
    const file = join(sshd.dir, 'window.bin');
    writeFileSync(file, Buffer.alloc(24 << 20, 3));
    const t = new SshTransport({ host: sshd.host, port: sshd.port, user: sshd.user, identity: [sshd.userKey], knownHostsPath: knownHosts, sshConfigPath: '/dev/null', sftpRequest: false });
    try {
      const channel = await t.openSftp();
      const incoming = (channel as unknown as { incoming: { window: number } }).incoming;
      assert.equal(incoming.window, SFTP_WINDOW, 'raised from ssh2 2 MiB');
      const sftp = await SftpClient.start(channel);
      const handle = await new Promise<Buffer>((res, rej) => sftp.open(file, PFLAG.READ, (e, h) => (e ? rej(e) : res(h))));
      // 24 MiB of answers, more than the window: without top-ups the server would stall.
      const into = Buffer.alloc(24 << 20);
      // Below the server's max-read-length (256 KiB - 1 KiB for OpenSSH): each read is answered whole.
      const piece = 128 << 10;
      let lowest = Infinity;
      await Promise.all(
        Array.from({ length: into.length / piece }, (_, i) =>
          new Promise<void>((res, rej) =>
            sftp.read(handle, i * piece, into, i * piece, piece, (e) => {
              lowest = Math.min(lowest, incoming.window);
              return e ? rej(e) : res();
            }),
          ),
        ),
      );
      assert.ok(into.every((b) => b === 3), 'every byte arrived');
      assert.ok(lowest > 2 << 20, `the window stayed above ssh2's 2 MiB (lowest ${lowest})`);
      sftp.end();
    } finally {
      await t.close();
      await sshd.stop();
    }
  });
});

describe('packet allocation for AES-GCM', () => {
  it('keeps the RFC 5647 layout, with fresh random padding, and leaves other ciphers alone', () => {
    class AESGCMCipherBinding {
      allocPacket(_n: number): Buffer {
        return Buffer.alloc(0);
      }
    }
    class ChaChaPolyCipherBinding {
      allocPacket(_n: number): Buffer {
        return Buffer.alloc(0);
      }
    }
    const gcm = new AESGCMCipherBinding();
    assert.equal(patchPacketAllocation({ _protocol: { _cipher: gcm } }), true);
    assert.equal(patchPacketAllocation({ _protocol: { _cipher: new ChaChaPolyCipherBinding() } }), false);
    assert.equal(ChaChaPolyCipherBinding.prototype.allocPacket.name, 'allocPacket');
    assert.equal(patchPacketAllocation({ _protocol: {} }), 'Client._protocol._cipher is missing');
    const paddings = new Set<string>();
    for (const payload of [0, 1, 11, 12, 27, 32768]) {
      for (let i = 0; i < 200; i++) {
        const pkt = gcm.allocPacket(payload);
        const len = pkt.readUInt32BE(0);
        const pad = pkt[4]!;
        assert.equal(pkt.length, 4 + len + 16, 'length field + tag');
        assert.equal(len, 1 + payload + pad);
        assert.equal(len % 16, 0, 'packet length (without the length field) a multiple of the block size');
        assert.ok(pad >= 4 && pad < 20, `padding ${pad}`);
        paddings.add(pkt.subarray(5 + payload, 5 + payload + pad).toString('hex'));
      }
    }
    assert.ok(paddings.size > 1150, `padding repeats: ${paddings.size} distinct of 1200`);
  });
});

describe('when ssh2 internals are missing (a future ssh2)', () => {
  it('one warning line, naming what is missing, and nothing patched', async () => {
    const patches = new Ssh2Patches('ssh://u@h → x');
    const results: unknown[] = [];
    const logged = await stderrOf(() => {
      results.push(patches.afterConnect({}));
      results.push(patches.onReady({ _sock: { write: () => true } }));
      results.push(patches.channelWindow({ incoming: { window: 2 ** 21 }, outgoing: { id: 0 } }));
    });
    assert.deepEqual(results, [false, false, undefined]);
    const lines = logged.trim().split('\n');
    assert.equal(lines.length, 1, `exactly one line, got:\n${logged}`);
    assert.match(lines[0]!, /^nbdcrypt: warn: ssh:\/\/u@h → x: ssh2 internals differ from ssh2 ~1\.17\.0 \(Client\._sock is missing\); .*correct, but slower$/);
  });

  it('each missing or misshapen field is named', () => {
    assert.equal(sessionSocket(undefined), 'Client._sock is missing');
    assert.equal(sessionSocket({ _sock: { write: () => true } }), 'Client._sock.cork is not a function');
    const sockLike = { cork() {}, uncork() {}, write() {}, on() {} };
    assert.equal(sessionSocket({ _sock: sockLike }), 'Client._sock has no byte counters');
    assert.equal(channelWindow({}), 'Channel.incoming.window is not a number');
    assert.equal(channelWindow({ incoming: { window: 1 } }), 'Channel.outgoing.id is not a number');
    assert.equal(channelWindow({ incoming: { window: 1 }, outgoing: { id: 1 }, _client: {} }), 'Channel._client._protocol.channelWindowAdjust is not a function');
  });
});
