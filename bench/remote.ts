/**
 * Throughput of the NBD client over the ssh2 transport next to its peers, in one run over a
 * loopback sshd (the machines are shared, so ratios matter, not MB/s):
 *   (a) a raw ssh2 channel: `cat > /dev/null` (write direction) and `head -c N /dev/zero`
 *       (read direction) on an exec channel, same cipher (in this process, so it shares the
 *       AES-GCM packet allocation that the first nbdcrypt session patches into ssh2;
 *       bench/e2e-compare measures plain ssh2 in a process of its own);
 *   (b) the same nbd-server through an OpenSSH `ssh -L` tunnel, driven by nbdcopy.
 * Our client is measured with 1 and 4 connections (channels of one session), 1 MiB
 * requests, 32 in flight. The export file is on tmpfs (/dev/shm) so the remote disk does
 * not enter the comparison. Target: ≥ 0.85 of (a). Best of N rounds per row.
 * sshd (with its sessions) and nbd-server run on one CPU, this process (the ssh2 clients),
 * the ssh -L tunnel and nbdcopy on another (cpu-pinning.ts; --pin off turns it off).
 * Run: node dist/bench/remote.js [--size 1G] [--rounds 3] [--cipher aes128-gcm@openssh.com] [--pin 0:1|off]
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseSize } from '../src/size.js';
import type { ResilientDevice } from '../src/resilient/resilient-device.js';
import { openRemoteTarget } from '../src/backend/remote-target.js';
import { nbdcopyAsync } from '../peers/nbdcopy.js';
import { startNbdServer } from '../peers/nbd-server.js';
import { startSshd, type SshdPeer } from '../peers/sshd.js';
import { freePort, requireTool, run, startProcess, waitFor } from '../peers/tools.js';
import { parsePinning, describePinning, pinSelf } from '../src/cli/bench/cpu-pinning.js';
import { bareRead, bareSession, bareWrite } from './bare-channel.js';
import { benchArgs } from './bench-args.js';

const MiB = 1024 * 1024;

function mbps(bytes: number, ms: number): number {
  return bytes / 1e6 / (ms / 1000);
}

async function timed(fn: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** Runs `op` on every MiB of the first `bytes`, `depth` at a time, in order of offset. */
async function eachMiB(bytes: number, op: (at: number) => Promise<unknown>, depth = 32): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < bytes) {
      const at = next;
      next += MiB;
      await op(at);
    }
  };
  await Promise.all(Array.from({ length: depth }, worker));
}

async function nbdWrite(dev: ResilientDevice, bytes: number): Promise<void> {
  const chunk = randomBytes(MiB);
  await eachMiB(bytes, (at) => dev.write(at, chunk));
  await dev.flush();
}

const nbdRead = (dev: ResilientDevice, bytes: number): Promise<void> => eachMiB(bytes, (at) => dev.read(at, MiB));

async function main(): Promise<void> {
  const values = benchArgs(
    'Usage: node dist/bench/remote.js [--size 1G] [--rounds 3] [--cipher aes128-gcm@openssh.com] [--pin LOCAL:REMOTE|off]\n  The NBD client over ssh2 next to a raw ssh2 channel and an ssh -L tunnel, on a loopback sshd.',
    { size: { type: 'string', default: '1G' }, cipher: { type: 'string', default: 'aes128-gcm@openssh.com' }, rounds: { type: 'string', default: '3' }, pin: { type: 'string' } },
  );
  const rounds = Math.max(1, Number(values.rounds));
  const size = parseSize(values.size!, '--size');
  const cipher = values.cipher!;
  requireTool('nbdcopy', 'libnbd-bin'); // before any peer starts
  delete process.env.SSH_AUTH_SOCK;
  // The export lives on tmpfs so the remote disk's speed (and fsync on flush) stays out of a
  // comparison that is about the transport.
  if (existsSync('/dev/shm')) process.env.TMPDIR = '/dev/shm';
  const pinning = parsePinning(values.pin);
  const sshd = await startSshd({ cpus: pinning?.remote });
  const nbd = await startNbdServer({ size, cpus: pinning?.remote });
  // Everything after this runs on the local side: this process's clients, ssh -L, nbdcopy.
  const unpin = pinSelf(pinning?.local);
  const knownHosts = join(sshd.dir, 'known_hosts');
  writeFileSync(knownHosts, `${sshd.knownHostsLine}\n`);
  const rows: { name: string; ms: number; ref?: string }[] = [];
  // Best of N rounds per row: the machine is shared, and the best run is the least disturbed.
  const record = (name: string, ms: number, ref?: string): void => {
    const r = rows.find((x) => x.name === name);
    if (!r) rows.push({ name, ms, ref });
    else r.ms = Math.min(r.ms, ms);
  };
  const tunnelPort = await freePort();
  const tunnel = startProcess('ssh', ['-N', '-c', cipher, '-L', `127.0.0.1:${tunnelPort}:127.0.0.1:${nbd.port}`, '-p', String(sshd.port), '-i', sshd.userKey,
    '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'BatchMode=yes', '-F', '/dev/null', `${sshd.user}@${sshd.host}`]);
  const devs: ResilientDevice[] = [];
  try {
    const raw = await bareSession({ host: sshd.host, port: sshd.port, user: sshd.user, keyFile: sshd.userKey, cipher });
    for (const connections of [1, 4]) {
      devs.push(await openRemoteTarget(`ssh://${sshd.user}@${sshd.host}:${sshd.port}/${nbd.exportName}?nbd=127.0.0.1:${nbd.port}`, {
        knownHostsPath: knownHosts, identity: [sshd.userKey], sshConfigPath: '/dev/null', connections, ciphers: [cipher],
      }));
    }
    await waitFor('ssh -L tunnel', () => run('bash', ['-c', `exec 3<>/dev/tcp/127.0.0.1/${tunnelPort}`], { allowFail: true }).status === 0, 10_000);
    const src = join(sshd.dir, 'source.img');
    writeFileSync(src, randomBytes(size));
    const uri = `nbd://127.0.0.1:${tunnelPort}/${nbd.exportName}`;
    for (let round = 0; round < rounds; round++) {
      record('(a) raw ssh2 channel write (cat > /dev/null)', await timed(() => bareWrite(raw, size)));
      record('(a) raw ssh2 channel read (head -c /dev/zero)', await timed(() => bareRead(raw, size)));
      for (const dev of devs) {
        const n = dev.connectionCount;
        record(`nbdcrypt client over ssh2, ${n} conn, write+flush`, await timed(() => nbdWrite(dev, size)), 'write');
        record(`nbdcrypt client over ssh2, ${n} conn, read`, await timed(() => nbdRead(dev, size)), 'read');
      }
      record('(b) nbdcopy via OpenSSH ssh -L, write (4 conn)', 1000 * (await nbdcopyAsync(src, uri, { extra: ['--flush'] })), 'write');
      record('(b) nbdcopy via OpenSSH ssh -L, read (4 conn)', 1000 * (await nbdcopyAsync(uri, 'null:')), 'read');
    }
    raw.end();
  } finally {
    for (const d of devs) await d.close();
    await tunnel.stop();
    await sshd.stop();
    await nbd.stop();
    unpin();
  }
  const rawW = rows[0]!.ms;
  const rawR = rows[1]!.ms;
  process.stdout.write(`remote throughput, ${values.size} per row, best of ${rounds} rounds, cipher ${cipher}, loopback sshd + nbd-server\nCPUs: ${describePinning(pinning)}\n`);
  process.stdout.write(`${'what'.padEnd(52)} ${'MB/s'.padStart(8)}  vs (a)\n`);
  for (const r of rows) {
    const base = r.ref === 'write' ? rawW : r.ref === 'read' ? rawR : undefined;
    const ratio = base ? (base / r.ms).toFixed(2) : '';
    process.stdout.write(`${r.name.padEnd(52)} ${mbps(size, r.ms).toFixed(0).padStart(8)}  ${ratio}\n`);
  }
}

main().catch((e: Error) => {
  process.stderr.write(`bench remote: ${e.message}\n`);
  process.exit(1);
});
