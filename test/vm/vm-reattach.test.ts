/**
 * The kernel never notices nbdcrypt dying: in the VM (the only place here with the nbd driver),
 * nbdcrypt attaches /dev/nbd0 over netlink, ext4 on it is written with conv=fsync, and serve is
 * killed with SIGKILL and started again, then handed over with SIGUSR2 and started again.
 * Passes only if writes resume after each restart, the kernel logged no I/O error, every file
 * the writer completed reads back, e2fsck is clean, and a serve of another volume is refused
 * while the filesystem stays mounted. Prints the table of the longest write stalls.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { requireTool, scratchDir } from '../../peers/tools.js';
import { describe as describeRun, liveVmCount, runVm } from './qemu-vm.js';
import { ensureVmImage, vmCacheRoot } from './vm-image.js';
import { detectFeatures, formatVolume } from './nbdcrypt-features.js';
import { reattachScript } from './reattach-script.js';

const BOOT_TIMEOUT_MS = 480_000;
const PASSPHRASE = 'vm reattach passphrase, not a secret';
const repo = fileURLToPath(new URL('../../../', import.meta.url)).replace(/\/$/, '');
const log = (s: string): void => void process.stderr.write(`[vm-reattach] ${s}\n`);
const scratch = scratchDir('nbdcrypt-vm-reattach-');
const w = (name: string): string => join(scratch.path, name);

before(() => {
  for (const [tool, pkg] of [['qemu-system-x86_64', 'qemu-system-x86'], ['cpio', 'cpio'], ['depmod', 'kmod'], ['apt-get', 'apt']]) requireTool(tool, pkg);
});

after(() => {
  scratch.remove();
  assert.equal(liveVmCount(), 0, 'a qemu process is still running');
});

test('SIGKILL and SIGUSR2 handover of serve: the kernel holds I/O, the next serve reattaches; no I/O error, no lost write', { timeout: BOOT_TIMEOUT_MS + 420_000 }, async () => {
  const image = ensureVmImage();
  log(`image ${image.built ? `built in ${(image.buildMs / 1000).toFixed(1)} s` : 'from the cache'} (${vmCacheRoot()})`);
  const cryptsetup = requireTool('cryptsetup', 'cryptsetup-bin');
  writeFileSync(w('key'), PASSPHRASE, { mode: 0o600 });
  for (const [name, mib] of [['vol.img', 160], ['other.img', 32]] as const) {
    writeFileSync(w(name), '');
    truncateSync(w(name), mib * 2 ** 20);
    log(`format ${name}: ${formatVolume(detectFeatures(), cryptsetup, w(name), w('key'), 4096)}`);
  }
  const info: string[] = [];
  const wlog: { t: number; file: string }[] = [];
  let killedAt = 0;
  let handedOverAt = 0;
  const r = await runVm({
    image,
    script: reattachScript({ repo, filesPerPhase: 6, downSeconds: 3 }),
    ports: [],
    workDir: scratch.path,
    timeoutMs: BOOT_TIMEOUT_MS,
    label: 'reattach',
    files: { key: PASSPHRASE },
    extraArgs: [
      '-virtfs', 'local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap',
      '-drive', `file=${w('vol.img')},if=virtio,format=raw,cache=unsafe`,
      '-drive', `file=${w('other.img')},if=virtio,format=raw,cache=unsafe`,
    ],
    onLine: (line) => {
      const m = /^VMTEST wlog ([\d.]+) (\S+)$/.exec(line);
      if (m) wlog.push({ t: Number(m[1]), file: m[2]! });
      const k = /^VMTEST info killed-at ([\d.]+)/.exec(line);
      if (k) killedAt = Number(k[1]);
      const h = /^VMTEST info handed-over-at ([\d.]+)/.exec(line);
      if (h) handedOverAt = Number(h[1]);
      if (line.startsWith('VMTEST info ')) info.push(line.slice('VMTEST info '.length));
    },
  });
  const text = describeRun(r);
  log(`guest:\n${text}`);
  assert.equal(r.timedOut, false, `the guest did not finish in time\n${text}\n${r.console.slice(-4000)}`);
  assert.deepEqual(r.steps.filter((s) => !s.ok).map((s) => s.name), [], `guest steps failed\n${text}\n${r.console.slice(-4000)}`);
  assert.equal(r.rc, 0, `guest script exit status\n${text}`);

  // The longest gap between two completed fsync'ed files across each restart.
  const stallAround = (at: number): number => {
    let worst = 0;
    for (let i = 1; i < wlog.length; i++) {
      if (wlog[i - 1]!.t <= at + 1 && wlog[i]!.t >= at) worst = Math.max(worst, wlog[i]!.t - wlog[i - 1]!.t);
    }
    return worst;
  };
  const after = (at: number): number => wlog.filter((x) => x.t > at).length;
  assert.ok(killedAt > 0 && handedOverAt > killedAt, 'the guest reported no kill or handover time');
  const rows = [
    ['SIGKILL, serve again 3 s later', after(killedAt) - after(handedOverAt), stallAround(killedAt)],
    ['SIGUSR2 handover, serve again', after(handedOverAt), stallAround(handedOverAt)],
  ] as const;
  log('| restart | writes after it | I/O errors in dmesg | e2fsck | files lost | longest write stall |');
  log('|---|---:|---:|---|---:|---:|');
  for (const [what, writes, stall] of rows) {
    log(`| ${what} | ${writes} | 0 | clean | 0 | ${stall.toFixed(1)} s |`);
    assert.ok(writes > 0, `${what}: no write completed after it`);
  }
  for (const l of info.filter((x) => x.startsWith('dmesg ') || x.startsWith('status ') || x.startsWith('serve-'))) log(l);
});
