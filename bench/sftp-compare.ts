/**
 * nbdcrypt's sftp:// target next to the other ways of reaching a disk image over SSH, all in
 * one run with one load generator (fio: its nbd engine for NBD rows, libaio on the loop
 * device for sshfs):
 *   A. loopback: `nbdcrypt serve sftp://` (LUKS2 image file on the server), `nbdcrypt serve
 *      ssh://` (LUKS2 through nbd-server), qemu-nbd's luks driver over its ssh driver (LUKS1
 *      image on the server, ssh-agent login), nbdkit's ssh plugin and sshfs + losetup (both
 *      plaintext). The remote side (sshd, its sessions and sftp servers, nbd-server) runs on
 *      one CPU and everything local on another (cpu-pinning.ts), images live on tmpfs,
 *      sequential cells move --transfer bytes, best of --rounds;
 *   B. a WAN: a delay proxy (latency each way + bandwidth cap) in front of sshd; sequential
 *      write of nbdcrypt sftp:// vs sshfs + loop.
 * Then the targets with the measured ratios (docs/performance.md, SFTP).
 * Run: npm run build && node dist/bench/sftp-compare.js [--help]
 */
import { randomBytes } from 'node:crypto';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseSize } from '../src/size.js';
import { DEFAULT_DATA_OFFSET } from '../src/luks/luks2-layout.js';
import { readEnvironment } from '../src/cli/environment.js';
import { createServeRuntime } from '../src/cli/serve-runtime.js';
import { measure, tmpfsWithRoom, type Row } from '../src/cli/bench/e2e.js';
import { describePinning, parsePinning } from '../src/cli/bench/cpu-pinning.js';
import { checkFio, standardWorkloads, type Workload } from '../src/cli/bench/e2e-fio.js';
import { formatBenchVolume, serveSubprocess } from '../src/cli/bench/e2e-nbdcrypt.js';
import { startNbdServer, startSshd } from '../src/cli/bench/e2e-peers.js';
import { runTool, scratch } from '../src/cli/bench/e2e-procs.js';
import { addRowsTarget, formatSections, formatTargets, type Report, type Target } from '../src/cli/bench/e2e-report.js';
import { benchArgs } from './bench-args.js';
import { qemuLuksImage, startDelayProxy } from './e2e-compare-peers.js';
import { startAgent, startNbdkitSsh, startQemuNbdSsh, startSshfsLoop } from './sftp-compare-peers.js';

const usage = `Usage: node dist/bench/sftp-compare.js [OPTIONS]
  fio through 'nbdcrypt serve sftp://' next to nbdcrypt ssh://, qemu-nbd luks over ssh,
  nbdkit ssh and sshfs + losetup, then a WAN section and the targets with their ratios.
  --sections LIST        lan,wan (default both)
  --transfer SIZE        bytes each sequential cell moves (default 1G; 0: --seconds)
  --seconds N            per random cell (default 3); --wan-seconds N per WAN cell (default 8)
  --rounds N             rounds per cell, the best is kept (default 3), after a short
                         unrecorded warm-up pass; each target shows its rounds too
  --depths LIST          queue depths (default 16)
  --size SIZE            image size (default 1G)
  --connections N        nbdcrypt's --connections on loopback (default: serve's own)
  --pin LOCAL:REMOTE     CPUs (taskset lists) of the local side and of the remote side (sshd,
                         its sftp servers, nbd-server); 'off': share them all (default: the
                         first two CPUs, when there are two)
  --wan-delay-ms MS      WAN proxy latency each way (default 25)
  --wan-rate RATE        WAN proxy bandwidth per direction (default 250M, bytes per second)
  --wan-connections N    nbdcrypt's --connections over the WAN (default 16)
  --serve-args ARGS      extra arguments for the sftp:// serve (space-separated; for A/B tuning)
  --json                 machine-readable output`;
const v = benchArgs(usage, {
  sections: { type: 'string', default: 'lan,wan' },
  transfer: { type: 'string', default: '1G' },
  seconds: { type: 'string', default: '3' },
  'wan-seconds': { type: 'string', default: '8' },
  rounds: { type: 'string', default: '3' },
  depths: { type: 'string', default: '16' },
  size: { type: 'string', default: '1G' },
  connections: { type: 'string' },
  pin: { type: 'string' },
  'wan-delay-ms': { type: 'string', default: '25' },
  'wan-rate': { type: 'string', default: '250M' },
  'wan-connections': { type: 'string', default: '16' },
  'serve-args': { type: 'string', default: '' },
  json: { type: 'boolean', default: false },
});
const { env } = createServeRuntime(readEnvironment());
const sections = new Set(v.sections!.split(','));
const transfer = parseSize(v.transfer!, '--transfer');
const seconds = Number(v.seconds);
const rounds = Number(v.rounds);
const depths = v.depths!.split(',').map(Number);
const size = parseSize(v.size!, '--size');
const pinning = parsePinning(v.pin);
const local = pinning?.local;
const remote = pinning?.remote;
const wanDelay = Number(v['wan-delay-ms']);
const wanRate = parseSize(v['wan-rate']!, '--wan-rate');
const wanConns = Number(v['wan-connections']);
const extraServe = v['serve-args']!.split(' ').filter(Boolean);
const conns = v.connections ? ['--connections', v.connections] : [];
const wanWorkloads: Workload[] = [{ pattern: 'seq-write', blockSize: 1 << 20, queueDepth: 16 }];

const fio = checkFio();
const loadGenerator = `${runTool(fio, ['--version']).trim()}, ioengine=nbd (one connection per row), libaio O_DIRECT on the loop device`;
const dir = scratch('nbdcrypt-sftp-compare-');
// Every image lives on tmpfs (no sync between sections: the disk of a shared machine can take minutes).
const remoteDir = scratch('nbdcrypt-sftp-remote-', tmpfsWithRoom(6 * size));
const stops: (() => Promise<void>)[] = [];
const later = <T extends { stop(): Promise<void> }>(x: T): T => (stops.push(() => x.stop()), x);
const reports: Record<string, Report> = {};
const say = (m: string): void => void process.stderr.write(`sftp-compare: ${m}\n`);

const passFile = join(dir.path, 'pass');
writeFileSync(passFile, randomBytes(24).toString('hex'), { mode: 0o600 });
const serveArgs = ['--cache', '0'];

try {
  say(`setting up images of ${size} bytes in ${remoteDir.path}`);
  const img = (name: string): string => join(remoteDir.path, name);
  for (const f of ['luks2-sftp.img', 'luks2-ssh.img']) await formatBenchVolume(img(f), size, Buffer.from(readFileSync(passFile, 'utf8')), env);
  qemuLuksImage(img('luks1-qemu.img'), size - DEFAULT_DATA_OFFSET, passFile);
  for (const f of ['raw-nbdkit.img', 'raw-sshfs.img']) runTool('truncate', ['-s', String(size), img(f)]);

  const sshd = later(await startSshd(dir.path, remote));
  const sshOpts = ['--known-hosts', sshd.knownHosts, '--identity', sshd.userKey];
  const sftpUri = (port: number): string => `sftp://${sshd.user}@127.0.0.1:${port}${img('luks2-sftp.img')}`;
  say(`CPUs: ${describePinning(pinning)}`);

  if (sections.has('lan')) {
    runTool('mkdir', ['-p', join(dir.path, 'nbd')]);
    const nbd = await startNbdServer(join(dir.path, 'nbd'), img('luks2-ssh.img'), 'disk', remote);
    const agent = await startAgent(dir.path, sshd.userKey);
    const started: { stop(): Promise<void> }[] = [nbd, agent];
    try {
      const sftp = await serveSubprocess(sftpUri(sshd.port), passFile, dir.path, [...serveArgs, ...sshOpts, ...conns, ...extraServe], [], local);
      started.push(sftp);
      const ssh = await serveSubprocess(`ssh://${sshd.user}@127.0.0.1:${sshd.port}/disk?nbd=127.0.0.1:${nbd.port}`, passFile, dir.path, [...serveArgs, ...sshOpts, ...conns], [], local);
      started.push(ssh);
      const qemu = await startQemuNbdSsh(dir.path, sshd, img('luks1-qemu.img'), passFile, agent, local);
      started.push(qemu);
      const nbdkit = await startNbdkitSsh(dir.path, sshd, img('raw-nbdkit.img'), sshd.port, local);
      started.push(nbdkit);
      const sshfs = await startSshfsLoop(dir.path, sshd, remoteDir.path, 'raw-sshfs.img', sshd.port, local);
      started.push(sshfs);
      const rows: Row[] = [
        { name: 'sftp', description: `'nbdcrypt serve sftp://… --cache 0${[...conns, ...extraServe].map((a) => ` ${a}`).join('')}' (LUKS2 image file on the server, ${sftp.engine} XTS)`, uri: sftp.uri },
        { name: 'ssh', description: `'nbdcrypt serve ssh://…?nbd=… --cache 0' (LUKS2 through nbd-server, ${ssh.engine} XTS)`, uri: ssh.uri },
        { name: 'qemu-ssh-luks', description: 'qemu-nbd --image-opts driver=luks,file.driver=ssh (LUKS1 image on the server, ssh-agent login)', uri: qemu.uri },
        { name: 'nbdkit-ssh', description: 'nbdkit ssh plugin, no encryption', uri: nbdkit.uri },
        { name: 'sshfs-loop', description: `sshfs -o direct_io + losetup ${sshfs.device}, no encryption`, uri: sshfs.device },
      ];
      say('A. loopback');
      reports.lan = await measure(rows, standardWorkloads(depths), seconds, sftp.engine, loadGenerator, rounds, { cpus: local, sequentialBytes: transfer || undefined }, pinning);
    } finally {
      for (const s of started.reverse()) await s.stop().catch((e: Error) => say(`stopping a peer: ${e.message}`));
    }
  }

  if (sections.has('wan')) {
    const proxy = await startDelayProxy(sshd.port, wanDelay, wanRate);
    const started: { stop(): Promise<void> }[] = [proxy];
    try {
      const hostLine = readFileSync(sshd.knownHosts, 'utf8').split('\n')[0]!;
      appendFileSync(sshd.knownHosts, `${hostLine.replace(/^\[127\.0\.0\.1\]:\d+/, `[127.0.0.1]:${proxy.port}`)}\n`);
      const sftp = await serveSubprocess(sftpUri(proxy.port), passFile, dir.path, [...serveArgs, ...sshOpts, '--connections', String(wanConns), ...extraServe], [], local);
      started.push(sftp);
      const sshfs = await startSshfsLoop(dir.path, sshd, remoteDir.path, 'raw-sshfs.img', proxy.port, local);
      started.push(sshfs);
      const rows: Row[] = [
        { name: 'sftp', description: `nbdcrypt serve sftp:// --connections ${wanConns}, through the WAN proxy`, uri: sftp.uri },
        { name: 'sshfs-loop', description: 'sshfs -o direct_io + losetup, through the WAN proxy, no encryption', uri: sshfs.device },
      ];
      say(`B. WAN: ${wanDelay} ms each way, ${(wanRate / 1e6).toFixed(0)} MB/s cap, in front of sshd`);
      reports.wan = await measure(rows, wanWorkloads, Number(v['wan-seconds']), sftp.engine, loadGenerator, rounds, { cpus: local }, pinning);
    } finally {
      for (const s of started.reverse()) await s.stop().catch((e: Error) => say(`stopping a peer: ${e.message}`));
    }
  }

  if (v.json) process.stdout.write(`${JSON.stringify({ reports, targets: targets() }, null, 2)}\n`);
  else {
    process.stdout.write(formatSections(reports, (name) => (name === 'wan' ? wanWorkloads : standardWorkloads(depths)), 'sftp'));
    process.stdout.write(formatTargets(targets()));
  }
} finally {
  for (const s of stops.reverse()) await s().catch(() => undefined);
  dir.remove();
  remoteDir.remove();
}

function targets(): Target[] {
  const out: Target[] = [];
  const qd = depths.includes(16) ? 16 : depths[0]!;
  const { lan, wan } = reports;
  for (const p of ['seq-read', 'seq-write', 'rand-read', 'rand-write'] as const) {
    const what = `${p} ${p.startsWith('seq') ? '1M' : '4K'} QD${qd}`;
    addRowsTarget(out, `sftp/qemu-ssh-luks ${what}`, lan, 'sftp', 'qemu-ssh-luks', p, qd, p.startsWith('seq') ? 3 : 2);
    addRowsTarget(out, `sftp/ssh ${what}`, lan, 'sftp', 'ssh', p, qd, 0.8);
  }
  addRowsTarget(out, 'wan: sftp/sshfs-loop seq-write 1M QD16', wan, 'sftp', 'sshfs-loop', 'seq-write', 16, 5);
  return out;
}
