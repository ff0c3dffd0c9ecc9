/**
 * The full end-to-end comparison, one run, one load generator (fio's nbd engine)
 * for every row, every server a separate process:
 *   A. local file: `nbdcrypt serve file:` (LUKS2) vs qemu-nbd's LUKS driver and nbdkit's luks
 *      filter on a LUKS1 image made by `qemu-img create -f luks`;
 *   B. over SSH on loopback: `nbdcrypt serve ssh://` and `ssh+cmd://` vs nbd-server through
 *      `ssh -L` (aes128-gcm), qemu-nbd's LUKS driver over that tunnel, the raw nbd-server, a
 *      bare ssh2 exec channel each way behind nbdcrypt's NBD server (bare-channel-nbd.ts), and
 *      the bare channel's MB/s without fio, for reference. The remote side (sshd and its sessions, the
 *      nbd-servers) runs on one CPU and everything local on another (cpu-pinning.ts), the
 *      exports live on tmpfs, sequential cells move --transfer bytes, best of --ssh-rounds;
 *      with --compare-env, a second `serve ssh://` with those variables set, side by side;
 *   C. a WAN: a delay proxy (latency each way + bandwidth cap) in front of sshd; sequential
 *      write of nbdcrypt with several connections vs the single-connection ssh -L path.
 * Then the performance targets with the measured ratios (docs/performance.md).
 * Run: npm run build && node dist/bench/e2e-compare.js [--sections file,ssh,wan] [--seconds N]
 *      [--depths 1,16,64] [--rounds N] [--ssh-rounds N] [--transfer 1G] [--pin L:R|off]
 *      [--size 1G] [--wan-delay-ms 25] [--wan-rate 250M] [--wan-connections 16]
 *      [--compare-env 'NAME=VALUE …'] [--json]
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseSize } from '../src/size.js';
import { DEFAULT_DATA_OFFSET } from '../src/luks/luks2-layout.js';
import { SSH2_CONNECTIONS } from '../src/backend/remote-target.js';
import { readEnvironment } from '../src/cli/environment.js';
import { createServeRuntime } from '../src/cli/serve-runtime.js';
import { measure, tmpfsWithRoom, type Row } from '../src/cli/bench/e2e.js';
import { describePinning, parsePinning } from '../src/cli/bench/cpu-pinning.js';
import { checkFio, standardWorkloads, type FioRun, type Workload } from '../src/cli/bench/e2e-fio.js';
import { formatBenchVolume, serveSubprocess } from '../src/cli/bench/e2e-nbdcrypt.js';
import { startNbdServer, startSshd, startTunnel } from '../src/cli/bench/e2e-peers.js';
import { runTool, scratch } from '../src/cli/bench/e2e-procs.js';
import { addRowsTarget, formatSections, formatSideBySide, formatTargets, resultMetric, type Report, type Target } from '../src/cli/bench/e2e-report.js';
import { benchArgs } from './bench-args.js';
import { envAssignments } from '../src/cli/bench/env-assignments.js';
import { createCpuQuota, type CpuQuota } from '../peers/cpu-quota.js';
import { bareChannelMbps, qemuLuksImage, startBareChannelNbd, startDelayProxy, startNbdkitLuks, startQemuNbdLuks } from './e2e-compare-peers.js';

const usage = `Usage: node dist/bench/e2e-compare.js [OPTIONS]
  fio through nbdcrypt next to its peers (qemu-nbd LUKS, nbdkit luks, ssh -L, nbd-server), then
  the performance targets with the measured ratios.
  --sections LIST        file,ssh,wan (default all three)
  --seconds N            per cell (default 3); --wan-seconds N for the WAN cells (default 8)
  --rounds N             rounds per cell, the best is kept (default 2), after a short
                         unrecorded warm-up pass; each target shows its rounds too
  --ssh-rounds N         the same for the over-SSH section (default 5)
  --transfer SIZE        bytes each sequential cell moves over SSH (default 1G; 0: --seconds)
  --pin LOCAL:REMOTE     CPUs (taskset lists) of the local side and of the remote side (sshd,
                         nbd-server) in the SSH and WAN sections; 'off': share them all
                         (default: the first two CPUs, when there are two)
  --remote-cpu-percent N the remote side (sshd and its sessions, nbd-server) together gets at
                         most N % of one CPU (a cgroup CPU quota; root): a slow NAS or VPS,
                         where the remote's CPU and not the client's limits the link
                         (default: no quota, the whole remote CPU)
  --depths LIST          queue depths (default 1,16,64)
  --size SIZE            image size (default 1G)
  --wan-delay-ms MS      WAN proxy latency each way (default 25)
  --wan-rate RATE        WAN proxy bandwidth per direction (default 250M, bytes per second)
  --wan-connections N    nbdcrypt's --connections over the WAN (default 16)
  --compare-env 'NAME=VALUE …'
                         over SSH, one more row 'nbdcrypt-b': the same ssh:// serve on a
                         volume of its own, started with these environment variables too
                         (e.g. NBDCRYPT_YOUNG_GC=0); its cells take turns with the others',
                         and after the targets each workload gives nbdcrypt / nbdcrypt-b
  --json                 machine-readable output`;
const v = benchArgs(usage, {
  seconds: { type: 'string', default: '3' },
  depths: { type: 'string', default: '1,16,64' },
  size: { type: 'string', default: '1G' },
  'wan-delay-ms': { type: 'string', default: '25' },
  'wan-rate': { type: 'string', default: '250M' },
  'wan-connections': { type: 'string', default: '16' },
  'wan-seconds': { type: 'string', default: '8' },
  sections: { type: 'string', default: 'file,ssh,wan' },
  rounds: { type: 'string', default: '2' },
  'ssh-rounds': { type: 'string', default: '5' },
  transfer: { type: 'string', default: '1G' },
  pin: { type: 'string' },
  'remote-cpu-percent': { type: 'string' },
  'compare-env': { type: 'string' },
  json: { type: 'boolean', default: false },
});
// As bench e2e does: the nbdcrypt serve processes started below inherit its thread-pool size.
const { env } = createServeRuntime(readEnvironment());
const seconds = Number(v.seconds);
const depths = v.depths!.split(',').map(Number);
const size = parseSize(v.size!, '--size');
const sections = new Set(v.sections!.split(','));
const wanDelay = Number(v['wan-delay-ms']);
const wanRate = parseSize(v['wan-rate']!, '--wan-rate');
const wanConns = Number(v['wan-connections']);
const rounds = Number(v.rounds);
const sshRounds = Number(v['ssh-rounds']);
const transfer = parseSize(v.transfer!, '--transfer');
let compareEnv: Record<string, string> | undefined;
try {
  compareEnv = v['compare-env'] === undefined ? undefined : envAssignments(v['compare-env'], '--compare-env');
} catch (e) {
  process.stderr.write(`${(e as Error).message}\n`);
  process.exit(2);
}
const pinning = parsePinning(v.pin);
const local = pinning?.local;
const remote = pinning?.remote;
const sshFio: FioRun = { cpus: local, sequentialBytes: transfer || undefined };
const wanWorkloads: Workload[] = [
  { pattern: 'seq-write', blockSize: 1 << 20, queueDepth: 16 },
  { pattern: 'seq-read', blockSize: 1 << 20, queueDepth: 16 },
];

const fio = checkFio();
const loadGenerator = `${runTool(fio, ['--version']).trim()} ioengine=nbd, one connection per row`;
const dir = scratch('nbdcrypt-e2e-compare-');
// What the remote exports lives on tmpfs: the SSH rows compare data paths, not disks.
const remoteDir = scratch('nbdcrypt-e2e-remote-', tmpfsWithRoom(4 * size));
const stops: (() => Promise<void>)[] = [];
const later = <T extends { stop(): Promise<void> }>(x: T): T => (stops.push(() => x.stop()), x);
const reports: Record<string, Report> = {};
const extra: Record<string, number> = {};
const say = (m: string): void => void process.stderr.write(`e2e-compare: ${m}\n`);

const region = { offset: DEFAULT_DATA_OFFSET, size: size - DEFAULT_DATA_OFFSET };
const passFile = join(dir.path, 'pass');
const pass = randomBytes(24).toString('hex');
writeFileSync(passFile, pass, { mode: 0o600 });
const serveArgs = ['--cache', '0'];
/** Made inside the try below, so that its finally removes it with the scratch directories. */
let remoteQuota: CpuQuota | undefined;
/** The remote peer just started, moved under the quota before any connection reaches it. */
const remotePeer = <T extends { pid: number }>(peer: T): T => (remoteQuota?.add(peer.pid), peer);

try {
  if (v['remote-cpu-percent'] !== undefined) remoteQuota = createCpuQuota(Number(v['remote-cpu-percent']));
  say(`setting up images of ${size} bytes in ${dir.path}`);
  const luks2File = join(dir.path, 'luks2-file.img');
  const luks1File = join(dir.path, 'luks1-file.img');
  const luks2Remote = join(remoteDir.path, 'luks2-remote.img');
  const luks2RemoteCmd = join(remoteDir.path, 'luks2-remote-cmd.img');
  const luks2RemoteB = join(remoteDir.path, 'luks2-remote-b.img');
  const luks1Remote = join(remoteDir.path, 'luks1-remote.img');
  // The unencrypted rows write to their own file: nbdcrypt flushes the remote when its replay
  // log fills, and an fdatasync must not pay for gigabytes other rows left dirty in the same file.
  const rawRemote = join(remoteDir.path, 'raw-remote.img');
  runTool('truncate', ['-s', String(size), rawRemote]);
  for (const f of [luks2File, luks2Remote, luks2RemoteCmd, ...(compareEnv ? [luks2RemoteB] : [])]) await formatBenchVolume(f, size, Buffer.from(pass), env);
  for (const f of [luks1File, luks1Remote]) qemuLuksImage(f, size - DEFAULT_DATA_OFFSET, passFile);

  if (sections.has('file')) {
    runTool('sync', []);
    const w = standardWorkloads(depths);
    const nbdcrypt = later(await serveSubprocess(`file:${luks2File}`, passFile, dir.path, serveArgs));
    const qemu = later(await startQemuNbdLuks(dir.path, 'qemu-file', passFile, luks1File));
    const nbdkit = later(await startNbdkitLuks(dir.path, luks1File, passFile));
    const rows: Row[] = [
      { name: 'nbdcrypt', description: `'nbdcrypt serve file:luks2.img --cache 0' (LUKS2, sector 4096, ${nbdcrypt.engine} XTS)`, uri: nbdcrypt.uri },
      { name: 'qemu-nbd', description: "qemu-nbd --image-opts driver=luks (LUKS1 by 'qemu-img create -f luks', aes-xts-plain64)", uri: qemu.uri },
      { name: 'nbdkit', description: 'nbdkit file --filter=luks (same LUKS1 image)', uri: nbdkit.uri },
    ];
    say('A. local file target');
    reports.file = await measure(rows, w, seconds, nbdcrypt.engine, loadGenerator, rounds);
    for (const s of stops.splice(0).reverse()) await s();
  }

  let sshd: Awaited<ReturnType<typeof startSshd>> | undefined;
  let nbdA: Awaited<ReturnType<typeof startNbdServer>> | undefined;
  let nbdRaw: Awaited<ReturnType<typeof startNbdServer>> | undefined;
  if (sections.has('ssh') || sections.has('wan')) {
    for (const d of ['nbdA', 'nbdB', 'nbdC', 'nbdD', 'nbdRaw']) runTool('mkdir', ['-p', join(dir.path, d)]);
    nbdA = later(remotePeer(await startNbdServer(join(dir.path, 'nbdA'), luks2Remote, 'disk', remote)));
    nbdRaw = later(remotePeer(await startNbdServer(join(dir.path, 'nbdRaw'), rawRemote, 'disk', remote)));
    sshd = later(remotePeer(await startSshd(dir.path, remote)));
    say(`CPUs: ${cpusLine()}`);
  }
  const sshOpts = (): string[] => ['--known-hosts', sshd!.knownHosts, '--identity', sshd!.userKey];

  if (sections.has('ssh') && sshd && nbdA && nbdRaw) {
    runTool('sync', []);
    const nbdB = remotePeer(await startNbdServer(join(dir.path, 'nbdB'), luks1Remote, 'disk', remote));
    const nbdC = remotePeer(await startNbdServer(join(dir.path, 'nbdC'), luks2RemoteCmd, 'disk', remote));
    const tunA = await startTunnel(sshd, nbdRaw.port, undefined, undefined, local);
    const tunB = await startTunnel(sshd, nbdB.port, undefined, undefined, local);
    const at = `${sshd.user}@127.0.0.1:${sshd.port}/disk`;
    const nbdcrypt = await serveSubprocess(`ssh://${at}?nbd=127.0.0.1:${nbdA.port}`, passFile, dir.path, [...serveArgs, ...sshOpts()], [], local);
    const viaCmd = await serveSubprocess(`ssh+cmd://${at}?nbd=127.0.0.1:${nbdC.port}`, passFile, dir.path, [...serveArgs, ...sshOpts()], [], local);
    const qemu = await startQemuNbdLuks(dir.path, 'qemu-tunnel', passFile, { host: '127.0.0.1', port: tunB.port, exportName: 'disk' }, local);
    const bare = await startBareChannelNbd(dir.path, { port: sshd.port, user: sshd.user, keyFile: sshd.userKey, cpus: local });
    const started = [nbdcrypt, viaCmd, qemu, bare, tunA, tunB, nbdB, nbdC];
    const rowB: Row[] = [];
    if (compareEnv) {
      const nbdD = remotePeer(await startNbdServer(join(dir.path, 'nbdD'), luks2RemoteB, 'disk', remote));
      const b = await serveSubprocess(`ssh://${at}?nbd=127.0.0.1:${nbdD.port}`, passFile, dir.path, [...serveArgs, ...sshOpts()], [], local, { ...process.env, ...compareEnv });
      started.push(b, nbdD);
      const set = Object.entries(compareEnv).map(([k, x]) => `${k}=${x}`).join(' ');
      rowB.push({ name: 'nbdcrypt-b', description: `the nbdcrypt row's serve on a volume of its own, with ${set}`, uri: b.uri });
    }
    const rows: Row[] = [
      { name: 'nbdcrypt', description: `'nbdcrypt serve ssh://…?nbd=… --cache 0' (ssh2, ${SSH2_CONNECTIONS} connections, ${nbdcrypt.engine} XTS)`, uri: nbdcrypt.uri },
      { name: 'ssh+cmd', description: `'nbdcrypt serve ssh+cmd://…?nbd=… --cache 0' (OpenSSH ssh -W, 1 connection, ${viaCmd.engine} XTS)`, uri: viaCmd.uri },
      { name: 'qemu-tunnel', description: "qemu-nbd driver=luks,file.driver=nbd through 'ssh -N -L' (aes128-gcm) to nbd-server", uri: qemu.uri },
      { name: 'ssh-tunnel', description: "nbd-server through 'ssh -N -L' (aes128-gcm), no encryption", uri: `nbd://127.0.0.1:${tunA.port}/disk`, region },
      { name: 'nbd-server', description: 'nbd-server over TCP, no SSH, no encryption (the ceiling)', uri: nbdRaw.uri, region },
      { name: 'bare-channel', description: "one bare ssh2 exec channel each way (cat > /dev/null, cat /dev/zero) behind nbdcrypt's NBD server: no XTS, no remote NBD", uri: bare.uri },
      ...rowB,
    ];
    say('B. over SSH (loopback)');
    reports.ssh = await measure(rows, standardWorkloads(depths), seconds, nbdcrypt.engine, loadGenerator, sshRounds, sshFio, pinning);
    reports.ssh.cpus = cpusLine();
    for (const s of started) await s.stop();
    say('B. one bare ssh2 exec channel (cat > /dev/null, head -c N /dev/zero; no NBD, no XTS)');
    const ch = await bareChannelMbps({ port: sshd.port, user: sshd.user, keyFile: sshd.userKey, bytes: transfer || 1 << 30, rounds: sshRounds, cpus: local });
    extra.rawChannelReadMbps = ch.readMbps;
    extra.rawChannelWriteMbps = ch.writeMbps;
  }

  if (sections.has('wan') && sshd && nbdA && nbdRaw) {
    runTool('sync', []);
    const proxy = await startDelayProxy(sshd.port, wanDelay, wanRate);
    const hostLine = readFileSync(sshd.knownHosts, 'utf8').split('\n')[0]!;
    appendFileSync(sshd.knownHosts, `${hostLine.replace(/^\[127\.0\.0\.1\]:\d+/, `[127.0.0.1]:${proxy.port}`)}\n`);
    const tun = await startTunnel(sshd, nbdRaw.port, 'aes128-gcm@openssh.com', proxy.port, local);
    const target = `ssh://${sshd.user}@127.0.0.1:${proxy.port}/disk?nbd=127.0.0.1:${nbdA.port}`;
    const nbdcrypt = await serveSubprocess(target, passFile, dir.path, [...serveArgs, ...sshOpts(), '--connections', String(wanConns)], [], local);
    const rows: Row[] = [
      { name: 'nbdcrypt', description: `nbdcrypt serve ssh:// --connections ${wanConns}, through the WAN proxy`, uri: nbdcrypt.uri },
      { name: 'ssh-tunnel', description: "nbd-server through one 'ssh -N -L' connection, through the WAN proxy, no encryption", uri: `nbd://127.0.0.1:${tun.port}/disk`, region },
    ];
    say(`C. WAN: ${wanDelay} ms each way, ${(wanRate / 1e6).toFixed(0)} MB/s cap, in front of sshd`);
    reports.wan = await measure(rows, wanWorkloads, Number(v['wan-seconds']), nbdcrypt.engine, loadGenerator, rounds, { cpus: local }, pinning);
    reports.wan.cpus = cpusLine();
    for (const s of [nbdcrypt, tun, proxy]) await s.stop();
  }

  if (v.json) process.stdout.write(`${JSON.stringify({ reports, extra, targets: targets() }, null, 2)}\n`);
  else {
    process.stdout.write(formatSections(reports, (name) => (name === 'wan' ? wanWorkloads : standardWorkloads(depths)), 'nbdcrypt'));
    if (extra.rawChannelReadMbps !== undefined) process.stdout.write(`\none bare ssh2 exec channel, no load generator (reference): read ${extra.rawChannelReadMbps.toFixed(0)} MB/s, write ${extra.rawChannelWriteMbps!.toFixed(0)} MB/s\n`);
    process.stdout.write(formatTargets(targets()));
    if (compareEnv) process.stdout.write(formatSideBySide(reports.ssh, 'nbdcrypt', 'nbdcrypt-b', standardWorkloads(depths)));
  }
} finally {
  for (const s of stops.reverse()) await s().catch(() => undefined);
  remoteQuota?.remove();
  dir.remove();
  remoteDir.remove();
}

/** Which CPUs each side got, and the remote's quota if any. */
function cpusLine(): string {
  return `${describePinning(pinning)}${remoteQuota ? `; remote side ${remoteQuota.description}` : ''}`;
}

function targets(): Target[] {
  const out: Target[] = [];
  const qd = depths.includes(16) ? 16 : depths[0]!;
  const { file, ssh, wan } = reports;
  for (const p of ['seq-read', 'seq-write', 'rand-read', 'rand-write'] as const) {
    addRowsTarget(out, `file: nbdcrypt/qemu-nbd ${p} QD${qd}`, file, 'nbdcrypt', 'qemu-nbd', p, qd, 1.5);
  }
  for (const p of ['seq-read', 'seq-write'] as const) addRowsTarget(out, `ssh: nbdcrypt/qemu-tunnel ${p} QD${qd}`, ssh, 'nbdcrypt', 'qemu-tunnel', p, qd, 1.2);
  for (const p of ['seq-read', 'seq-write'] as const) addRowsTarget(out, `ssh: nbdcrypt/ssh-tunnel ${p} 1M QD${qd}`, ssh, 'nbdcrypt', 'ssh-tunnel', p, qd, 1.0);
  // Against the bare channel fed by the same fio (bare-channel-nbd.ts says why not the bare channel alone).
  for (const p of ['seq-read', 'seq-write'] as const) addRowsTarget(out, `ssh: nbdcrypt/bare-channel ${p} 1M QD${qd}`, ssh, 'nbdcrypt', 'bare-channel', p, qd, 0.9);
  addRowsTarget(out, 'ssh: nbdcrypt/ssh-tunnel rand-read 4K QD16', ssh, 'nbdcrypt', 'ssh-tunnel', 'rand-read', 16, 0.9);
  addRowsTarget(out, 'ssh: nbdcrypt/ssh-tunnel rand-write 4K QD16', ssh, 'nbdcrypt', 'ssh-tunnel', 'rand-write', 16, 5);
  for (const p of ['seq-read', 'seq-write', 'rand-read', 'rand-write'] as const) addRowsTarget(out, `ssh: ssh+cmd/nbdcrypt ${p} QD${qd}`, ssh, 'ssh+cmd', 'nbdcrypt', p, qd, 0.9);
  for (const p of ['rand-read', 'rand-write'] as const) addRowsTarget(out, `ssh: nbdcrypt/qemu-tunnel ${p} 4K QD16`, ssh, 'nbdcrypt', 'qemu-tunnel', p, 16, 5);
  addRowsTarget(out, `wan: nbdcrypt/ssh-tunnel seq-write 1M QD16`, wan, 'nbdcrypt', 'ssh-tunnel', 'seq-write', 16, 5);
  const iops = resultMetric(file, 'nbdcrypt', 'rand-read', 16);
  if (iops !== undefined) out.push({ what: 'file: nbdcrypt rand-read 4K QD16 >= 30000 IOPS', value: `${iops.toFixed(0)} IOPS`, ok: iops >= 30_000 });
  return out;
}
