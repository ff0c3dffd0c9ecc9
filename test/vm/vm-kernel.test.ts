/**
 * Proof on a real Linux kernel: in a small Debian VM under qemu, the kernel's own
 * nbd-client attaches /dev/nbdN to nbdcrypt on the host (through virtio-serial, no guest
 * network); xfs and ext4 are made, mounted, written, fsync'ed and read back by checksum,
 * detached and re-attached, while the host cuts nbdcrypt's link to its remote (nbd-server,
 * reached as nbd:// for one volume and ssh:// through sshd for the other) in the middle of
 * the writes. Then the format proof: the remote images nbdcrypt wrote (4096- and
 * 512-byte sectors), exported raw, are opened by dm-crypt (`cryptsetup open`), fsck'ed and
 * checksummed; and the reverse: volumes cryptsetup formatted and filled in the guest are
 * served by nbdcrypt and read back. The cipher phase (cipher-volumes.ts): a Twofish LUKS1 and
 * a Serpent LUKS2 volume cryptsetup fills in boot 1 are read and written by nbdcrypt on the
 * host, then checked by dm-crypt in boot 2. NBDCRYPT_TEST_FAULT=iv|sector corrupts the image
 * before the dm-crypt check to show the test can fail. Recipe: test/vm/README.md.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { writeFileSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { requireTool, scratchDir, type Proc } from '../../peers/tools.js';
import { describe as describeRun, liveVmCount, runVm, type VmPort, type VmResult } from './qemu-vm.js';
import { ensureVmImage, vmCacheRoot, type VmImage } from './vm-image.js';
import { CutRelay, startRawExport } from './host-peers.js';
import { startNbdServer, type NbdServerPeer } from '../../peers/nbd-server.js';
import { startSshd, type SshdPeer } from '../../peers/sshd.js';
import { cryptsetupFormat, dmCryptCheck, guestScript, readThroughNbdcrypt, sumsFile, writeThroughNbdcrypt } from './guest-script.js';
import { detectFeatures, formatVolume, serveFirst, type NbdcryptFeatures } from './nbdcrypt-features.js';
import { faultFromEnv, injectFault } from './fault.js';
import { cipherVolumes, hostRoundTrip } from './cipher-volumes.js';

const BOOT_TIMEOUT_MS = 240_000;
/** The whole VM part (image build included) ends within this; each boot gets what is left. */
const BUDGET_MS = 600_000;
const budgetEnd = Date.now() + BUDGET_MS;
const PASSPHRASE = 'vm test passphrase, not a secret';
const CUT_DELAY_MS = 700; // after the guest's mark: the writes are under way by then
const CUT_DOWN_MS = 2_000; // the remote stays unreachable this long

const log = (s: string): void => void process.stderr.write(`[vm-test] ${s}\n`);
const scratch = scratchDir('nbdcrypt-vm-');
const w = (name: string): string => join(scratch.path, name);
const procs: Proc[] = [];
const relays: CutRelay[] = [];
/** nbd-servers holding the ciphertext; their files are exported raw to dm-crypt in boot 2. */
let remote4k: NbdServerPeer | undefined;
let remote512: NbdServerPeer | undefined;
let sshd: SshdPeer | undefined;
let img4k = '';
let img512 = '';
let image: VmImage;
let features: NbdcryptFeatures;
let cryptsetup: string;
let boot1: VmResult | undefined;
/** What the kernel proof needs that this tree could not do, with nbdcrypt's own errors. */
const gaps: string[] = [];
let served = { enc4k: false, enc512: false, remote4k: false, remote512: false };
/** Per volume: how its remote link was cut in boot 1 (times from qemu's start). */
interface CutRecord {
  via: string;
  relay: CutRelay;
  markAt: number;
  at: number;
  links: number;
  writesDoneAt: number;
  remoteConnections: number;
}
const cuts = new Map<string, CutRecord>();
/** Per cipher volume: the checksums of the guest's and the host's files, for boot 2. */
const cipherSums = new Map<string, string>();
const fault = faultFromEnv();

/** Hard limit for the next qemu run: its own cap, or what remains of the budget. */
function bootTimeout(): number {
  const left = budgetEnd - Date.now() - 20_000; // leave time to stop servers and report
  assert.ok(left > 30_000, `the VM part's ${BUDGET_MS / 1000} s budget is used up`);
  return Math.min(BOOT_TIMEOUT_MS, left);
}

function sh(n: number): string {
  return `${(n / 1000).toFixed(1)} s`;
}

/** Stops every server of a boot; the remote's daemon too, but its file stays for boot 2. */
async function stopAll(): Promise<void> {
  for (const p of procs.splice(0)) await p.stop(10_000);
  for (const r of relays.splice(0)) await r.close();
  await remote4k?.kill();
  await remote512?.kill();
  await sshd?.stop();
  sshd = undefined;
}

function assertRun(r: VmResult, what: string): void {
  const text = describeRun(r);
  log(`${what}:\n${text}`);
  assert.equal(r.timedOut, false, `${what}: the guest did not finish in time (qemu killed by PID)\n${text}\n${r.console.slice(-3000)}`);
  const failed = r.steps.filter((s) => !s.ok);
  assert.deepEqual(failed.map((s) => s.name), [], `${what}: guest steps failed\n${text}`);
  assert.equal(r.rc, 0, `${what}: guest script exit status\n${text}\n${r.console.slice(-3000)}`);
}

before(() => {
  for (const [tool, pkg] of [['qemu-system-x86_64', 'qemu-system-x86'], ['cpio', 'cpio'], ['depmod', 'kmod'], ['nbdkit', 'nbdkit'], ['nbd-server', 'nbd-server'], ['sshd', 'openssh-server'], ['apt-get', 'apt']]) requireTool(tool, pkg);
  cryptsetup = requireTool('cryptsetup', 'cryptsetup-bin');
  writeFileSync(w('key'), PASSPHRASE, { mode: 0o600 });
  features = detectFeatures();
  if (!features.format) gaps.push("nbdcrypt format is not built yet (its --help has no --key-file): the LUKS2 headers are made by the host's cryptsetup");
  if (fault) log(`FAULT INJECTION ACTIVE: NBDCRYPT_TEST_FAULT=${fault} (this run must fail)`);
});

after(async () => {
  await stopAll();
  await remote4k?.stop();
  await remote512?.stop();
  scratch.remove();
  assert.equal(liveVmCount(), 0, 'a qemu process is still running');
});

test('guest image: a Debian kernel and initramfs assembled from Debian packages, cached', { timeout: 360_000 }, () => {
  image = ensureVmImage();
  log(`image ${image.built ? `built in ${sh(image.buildMs)}` : 'taken from the cache'}: ${image.dir} (cache root ${vmCacheRoot()})`);
});

test('boot 1: nbd-client attaches to nbdcrypt; xfs + ext4 written, fsync, re-attach, link cuts; cryptsetup formats raw exports', { timeout: BOOT_TIMEOUT_MS + 120_000 }, async () => {
  assert.ok(image, 'no guest image');
  const t0 = Date.now();
  for (const name of ['rev', 'rev512', ...cipherVolumes.map((v) => v.tag)]) {
    writeFileSync(w(name), '');
    truncateSync(w(name), (name.startsWith('rev') ? 128 : 64) * 2 ** 20);
  }
  const key = ['--key-file', w('key')];
  // Both volumes live on remotes (Debian's nbd-server on 127.0.0.1), each behind a relay the
  // test cuts: x4k reached as nbd://, x512 as ssh:// through sshd.
  remote4k = await startNbdServer({ size: 512 * 2 ** 20, exportName: 'disk' }); // xfs wants ≥ 300 MB
  remote512 = await startNbdServer({ size: 256 * 2 ** 20, exportName: 'disk' });
  img4k = remote4k.file;
  img512 = remote512.file;
  log(`format: ${formatVolume(features, cryptsetup, img4k, w('key'), 4096)}`);
  log(`format: ${formatVolume(features, cryptsetup, img512, w('key'), 512)}`);
  sshd = await startSshd();
  const relay4k = await CutRelay.start(remote4k.port);
  const relay512 = await CutRelay.start(sshd.port);
  relays.push(relay4k, relay512);
  writeFileSync(w('known_hosts'), `[127.0.0.1]:${relay512.port} ${sshd.hostKey}\n`);
  const nbdUrl = `nbd://127.0.0.1:${relay4k.port}/disk`;
  const sshUrl = `ssh://${sshd.user}@127.0.0.1:${relay512.port}/disk?nbd=127.0.0.1:${remote512.port}`;
  const sshOpts = ['--known-hosts', w('known_hosts'), '--identity', sshd.userKey];
  // Best first; what fails to start is recorded in gaps and the next one is tried.
  const s4k = await serveFirst([
    { args: [nbdUrl, ...key], encrypted: true, remote: true },
    { args: [img4k, ...key], encrypted: true, remote: false },
    { args: ['--unencrypted', nbdUrl], encrypted: false, remote: true },
    { args: ['--unencrypted', `file:${img4k}`], encrypted: false, remote: false },
  ], w('c4k.sock'), 'c4k', gaps);
  procs.push(s4k.proc);
  log(`c4k: nbdcrypt serve ${s4k.choice.args.join(' ')}`);
  const s512 = await serveFirst([
    { args: [sshUrl, ...sshOpts, ...key], encrypted: true, remote: true },
    { args: [img512, ...key], encrypted: true, remote: false },
    { args: ['--unencrypted', `file:${img512}`], encrypted: false, remote: false },
  ], w('c512.sock'), 'c512', gaps);
  procs.push(s512.proc);
  log(`c512: nbdcrypt serve ${s512.choice.args.join(' ')}`);
  served = { enc4k: s4k.choice.encrypted, enc512: s512.choice.encrypted, remote4k: s4k.choice.remote, remote512: s512.choice.remote };
  cuts.set('x4k', { via: 'nbd:// (TCP to nbd-server)', relay: relay4k, markAt: 0, at: 0, links: 0, writesDoneAt: 0, remoteConnections: 0 });
  cuts.set('x512', { via: 'ssh:// (SSH to sshd, direct-tcpip to nbd-server)', relay: relay512, markAt: 0, at: 0, links: 0, writesDoneAt: 0, remoteConnections: 0 });
  procs.push(await startRawExport(w('rev'), w('raw-rev.sock')));
  procs.push(await startRawExport(w('rev512'), w('raw-rev512.sock')));
  const ports: VmPort[] = [
    { name: 'c4k', socket: w('c4k.sock') },
    { name: 'c512', socket: w('c512.sock') },
    { name: 'raw-rev', socket: w('raw-rev.sock') },
    { name: 'raw-rev512', socket: w('raw-rev512.sock') },
  ];
  const cipherParts: string[] = [];
  for (const v of cipherVolumes) {
    procs.push(await startRawExport(w(v.tag), w(`raw-${v.tag}.sock`)));
    ports.push({ name: `raw-${v.tag}`, socket: w(`raw-${v.tag}.sock`) });
    cipherParts.push(cryptsetupFormat({ dev: `/dev/nbd${ports.length - 1}`, port: `raw-${v.tag}` }, v.tag, 512, v.luksFormat));
  }
  const script = guestScript([
    writeThroughNbdcrypt({ dev: '/dev/nbd0', port: 'c4k' }, 'xfs', 'x4k', true),
    writeThroughNbdcrypt({ dev: '/dev/nbd1', port: 'c512' }, 'ext4', 'x512', true),
    cryptsetupFormat({ dev: '/dev/nbd2', port: 'raw-rev' }, 'rev', 4096),
    cryptsetupFormat({ dev: '/dev/nbd3', port: 'raw-rev512' }, 'rev512', 512),
    ...cipherParts,
  ]);
  log(`host setup ${sh(Date.now() - t0)}; booting`);
  const vmT0 = Date.now();
  boot1 = await runVm({
    image, script, ports, workDir: scratch.path, timeoutMs: bootTimeout(), label: 'boot1',
    files: { key: PASSPHRASE },
    onLine: (line) => {
      const m = /^VMTEST mark=(cut|writes-done)-(\S+)$/.exec(line);
      const c = m ? cuts.get(m[2]!) : undefined;
      if (!m || !c) return;
      if (m[1] === 'writes-done') {
        c.writesDoneAt = Date.now() - vmT0;
        return;
      }
      c.markAt = Date.now() - vmT0;
      setTimeout(() => {
        c.at = Date.now() - vmT0;
        c.links = c.relay.cut(CUT_DOWN_MS);
        log(`LINK CUT ${m[2]} at +${sh(c.at)}: ${c.links} connection(s) of nbdcrypt's ${c.via} link dropped, unreachable for ${CUT_DOWN_MS} ms`);
      }, CUT_DELAY_MS);
    },
  });
  for (const c of cuts.values()) c.remoteConnections = c.relay.connections;
  await stopAll(); // SIGTERM: nbdcrypt flushes and exits; the images are then complete
  // nbdcrypt's own account of the outages (stderr: reconnects, replays, warnings).
  for (const [tag, p] of [['c4k', s4k.proc], ['c512', s512.proc]] as const) {
    for (const l of p.stderr().split('\n').filter((x) => /dropped|reconnected|lost|error/i.test(x)).slice(0, 12)) log(`nbdcrypt ${tag}: ${l}`);
  }
  log(`boot 1 wall ${sh(boot1.wallMs)}`);
  assertRun(boot1, 'boot 1');
  for (const g of gaps) log(`GAP: ${g}`);
  assert.ok(served.enc4k && served.enc512 && served.remote4k && served.remote512, `boot 1 passed with what exists, but the kernel proof needs more:\n${gaps.join('\n')}`);
});

for (const tag of ['x4k', 'x512']) {
  test(`link cut ${tag}: nbdcrypt lost its remote in the middle of the guest writes; the guest saw no I/O error`, () => {
    assert.ok(boot1, 'boot 1 did not run');
    const c = cuts.get(tag);
    assert.ok(c, 'boot 1 set up no remote link');
    assert.ok(tag === 'x4k' ? served.remote4k : served.remote512, `nbdcrypt did not serve ${tag} from its remote: no link to cut\n${gaps.join('\n')}`);
    assert.ok(c.at > 0 && c.links > 0, `the cut dropped ${c.links} remote connection(s) (expected ≥ 1)`);
    assert.ok(c.remoteConnections >= 2, `nbdcrypt connected to its remote ${c.remoteConnections} time(s): it never reconnected after the cut`);
    assert.ok(c.writesDoneAt > c.at, `the writes ended at +${sh(c.writesDoneAt)}, before the cut at +${sh(c.at)}: not in the middle`);
    for (const step of [`write-during-cut-${tag}`, `readback-${tag}`, `readback-after-reattach-${tag}`, 'no-io-errors']) {
      assert.ok(boot1.steps.some((s) => s.name === step && s.ok), `guest step ${step} did not pass`);
    }
    log(`link cut ${tag} over ${c.via} verified: mark +${sh(c.markAt)}, cut +${sh(c.at)}, writes done +${sh(c.writesDoneAt)}, ${c.remoteConnections} connections to the remote, no I/O error, files read back after re-attach`);
  });
}

test('cipher volumes: nbdcrypt serves the Twofish LUKS1 and Serpent LUKS2 volumes dm-crypt filled; the host reads their files and writes its own', { timeout: 300_000 }, async () => {
  assert.ok(boot1 && boot1.rc === 0, 'boot 1 did not pass: nothing to check');
  for (const v of cipherVolumes) {
    cipherSums.set(v.tag, await hostRoundTrip(v, w(v.tag), w('key'), sumsFile(boot1.sums, v.tag), scratch.path));
    log(`${v.tag}: ${v.format} ${v.cipher} made by cryptsetup in the guest: the guest's files read back through nbdcrypt on the host; host files added`);
  }
});

test('boot 2: dm-crypt opens what nbdcrypt wrote (4096 and 512-byte sectors); nbdcrypt serves what cryptsetup wrote', { timeout: BOOT_TIMEOUT_MS + 120_000 }, async () => {
  assert.ok(boot1 && boot1.rc === 0, 'boot 1 did not pass: nothing to check');
  const t0 = Date.now();
  const enc = served.enc4k && served.enc512;
  if (fault) {
    // The image nbdcrypt wrote; without nbdcrypt's encryption, the cryptsetup-made one
    // (so the fault path of the harness can be shown either way).
    const [img, file] = enc ? [img4k, '/mnt/x4k f0'] : [w('rev'), '/mnt/rev f0'];
    const block = boot1.extents.get(file);
    assert.ok(block !== undefined, `boot 1 reported no extent for ${file}`);
    log(`FAULT: ${injectFault(fault, cryptsetup, img, w('key'), block)}`);
  }
  const parts: string[] = [];
  const ports: VmPort[] = [];
  const disk = (port: string): { dev: string; port: string } => ({ dev: `/dev/nbd${ports.length - 1}`, port });
  // The format proof: the images nbdcrypt wrote, exported raw, opened by dm-crypt.
  for (const [tag, img, fs, ok] of [['x4k', img4k, 'xfs', served.enc4k], ['x512', img512, 'ext4', served.enc512]] as const) {
    if (!ok) continue; // boot 1 wrote it unencrypted (recorded in gaps): nothing for dm-crypt
    procs.push(await startRawExport(img, w(`raw-${tag}.sock`)));
    ports.push({ name: `raw-${tag}`, socket: w(`raw-${tag}.sock`) });
    parts.push(dmCryptCheck(disk(`raw-${tag}`), fs, tag));
  }
  // The reverse: the volumes cryptsetup made in boot 1, served (decrypted) by nbdcrypt.
  for (const tag of ['rev', 'rev512']) {
    try {
      const args = [w(tag), '--key-file', w('key')];
      const s = await serveFirst([{ args, encrypted: true, remote: false }], w(`c-${tag}.sock`), `c-${tag}`, gaps);
      procs.push(s.proc);
      log(`${tag}: nbdcrypt serve ${s.choice.args.join(' ')}`);
      ports.push({ name: `c-${tag}`, socket: w(`c-${tag}.sock`) });
      parts.push(readThroughNbdcrypt(disk(`c-${tag}`), tag));
    } catch {
      // Without nbdcrypt's encryption only the harness can be exercised: dm-crypt re-opens
      // the volume cryptsetup made, through a raw export.
      procs.push(await startRawExport(w(tag), w(`raw-${tag}.sock`)));
      ports.push({ name: `raw-${tag}`, socket: w(`raw-${tag}.sock`) });
      parts.push(dmCryptCheck(disk(`raw-${tag}`), 'ext4', tag));
    }
  }
  // The cipher volumes: dm-crypt again, now with the host's files written through nbdcrypt.
  for (const tag of cipherSums.keys()) {
    procs.push(await startRawExport(w(tag), w(`raw-${tag}.sock`)));
    ports.push({ name: `raw-${tag}`, socket: w(`raw-${tag}.sock`) });
    parts.push(dmCryptCheck(disk(`raw-${tag}`), 'ext4', tag));
  }
  const files: Record<string, string> = { key: PASSPHRASE, ...Object.fromEntries([...cipherSums].map(([tag, sums]) => [`sums/${tag}`, sums])) };
  for (const tag of ['x4k', 'x512', 'rev', 'rev512']) files[`sums/${tag}`] = sumsFile(boot1.sums, tag);
  log(`host setup ${sh(Date.now() - t0)}; booting`);
  const r = await runVm({ image, script: guestScript(parts), ports, workDir: scratch.path, timeoutMs: bootTimeout(), label: 'boot2', files });
  await stopAll();
  log(`boot 2 wall ${sh(r.wallMs)}`);
  assertRun(r, 'boot 2');
  assert.equal(cipherSums.size, cipherVolumes.length, 'the cipher volumes were not written by nbdcrypt on the host: dm-crypt had nothing of theirs to check');
  for (const g of gaps) log(`GAP: ${g}`);
  assert.deepEqual(gaps, [], `boot 2 passed with what exists, but the kernel proof needs more`);
});
