/**
 * One boot of the VM test's guest under qemu (TCG: KVM is not usable on these machines),
 * with a guest script appended to the initramfs as /test/run.sh and one virtio-serial port
 * per host NBD socket: qemu dials a PortRelay (reconnect=1 re-dials after each NBD
 * disconnect) that reaches the server when the guest asks, and the guest's /init bridges
 * the port to /run/NAME.sock for nbd-client.
 * No guest networking. The serial console is parsed into VMTEST lines (see guest-lib.sh);
 * qemu has a hard time limit and is killed by PID, also when the test process exits.
 * Recipe: test/vm/README.md.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { requireTool, run } from '../../peers/tools.js';
import type { VmImage } from './vm-image.js';
import { PortRelay } from './port-relay.js';

export interface VmPort {
  /** Port name; the guest sees it as /run/NAME.sock. */
  name: string;
  /** Host unix socket qemu connects the port to (an NBD server's socket). */
  socket: string;
}

export interface VmStep {
  name: string;
  ok: boolean;
  seconds: number;
  /** Output of a failed step (its last lines). */
  log: string[];
}

export interface VmResult {
  steps: VmStep[];
  /** "DIR FILE" → sha256, from VMTEST sum lines. */
  sums: Map<string, string>;
  /** "DIR FILE" → first physical 4096-byte block on the device. */
  extents: Map<string, number>;
  /** Exit status of /test/run.sh, or null when the guest never finished. */
  rc: number | null;
  timedOut: boolean;
  wallMs: number;
  console: string;
}

const live = new Set<number>();

function kill(pid: number): void {
  if (pid <= 0) return; // never a process group or "every process"
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
}

// A test process that dies (timeout, assertion in a callback) must not leave qemu behind.
process.on('exit', () => live.forEach(kill));

/** qemu processes this test process started that are still running (0 after each run). */
export function liveVmCount(): number {
  return live.size;
}

/** The base initramfs, then the run's script as an uncompressed cpio (the kernel unpacks
 * concatenated archives; zero padding keeps the second header 4-byte aligned). */
function buildInitrd(image: VmImage, script: string, files: Record<string, string>, workDir: string): string {
  const tree = join(workDir, 'initrd-extra');
  rmSync(tree, { recursive: true, force: true });
  mkdirSync(join(tree, 'test'), { recursive: true });
  writeFileSync(join(tree, 'test', 'run.sh'), script, { mode: 0o755 });
  for (const [rel, content] of Object.entries(files)) {
    const path = join(tree, 'test', rel);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, content, { mode: 0o600 });
  }
  const cpio = run('sh', ['-c', 'find test | cpio -o -H newc -R 0:0 --quiet'], { cwd: tree }).stdout;
  const base = readFileSync(image.initrd);
  const pad = Buffer.alloc(512 - (base.length % 512));
  const out = join(workDir, 'initrd.img');
  writeFileSync(out, Buffer.concat([base, pad, Buffer.from(cpio, 'binary')]));
  return out;
}

export interface VmRunOptions {
  image: VmImage;
  script: string;
  /** Extra files for the guest, under /test/ (paths relative to it): key file, checksums. */
  files?: Record<string, string>;
  ports: VmPort[];
  workDir: string;
  /** Hard limit for the whole boot; qemu is killed by PID after it. */
  timeoutMs: number;
  /** Called for each VMTEST line as it arrives (the link cut reacts to a mark). */
  onLine?: (line: string) => void;
  /** Prefix for the progress log on stderr. */
  label: string;
  /** More qemu arguments: disks (-drive), a shared host directory (-virtfs). */
  extraArgs?: string[];
}

export async function runVm(opts: VmRunOptions): Promise<VmResult> {
  const qemu = requireTool('qemu-system-x86_64', 'qemu-system-x86');
  requireTool('cpio', 'cpio');
  const initrd = buildInitrd(opts.image, opts.script, opts.files ?? {}, opts.workDir);
  const args = [
    '-accel', 'tcg', '-cpu', 'max', '-smp', '1', '-m', '1024',
    '-nodefaults', '-no-reboot', '-display', 'none', '-net', 'none',
    '-kernel', opts.image.kernel, '-initrd', initrd,
    '-append', 'console=ttyS0 loglevel=4 panic=-1',
    '-serial', 'stdio',
    '-device', 'virtio-serial-pci,id=vs0',
    ...(opts.extraArgs ?? []),
  ];
  // qemu dials a relay per port, which reaches the server only when the guest asks for it.
  const relays = new Map<string, PortRelay>();
  for (const [i, p] of opts.ports.entries()) {
    statSync(p.socket); // the server must be up before the guest needs it
    const relay = await PortRelay.start(join(opts.workDir, `qemu-${i}.sock`), p.socket);
    relays.set(p.name, relay);
    args.push('-chardev', `socket,id=c${i},path=${relay.path},reconnect=1`);
    args.push('-device', `virtserialport,bus=vs0.0,chardev=c${i},name=${p.name}`);
  }

  const t0 = Date.now();
  // stdin is a pipe never written to: qemu's stdio chardev must not see EOF or a tty.
  const child = spawn(qemu, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  child.on('error', () => undefined); // reported through the missing pid or the exit below
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${qemu}`);
  live.add(pid);
  const result: VmResult = { steps: [], sums: new Map(), extents: new Map(), rc: null, timedOut: false, wallMs: 0, console: '' };
  let pending = '';
  let failing: VmStep | undefined;
  const onText = (text: string): void => {
    result.console += text;
    pending += text;
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl).replace(/\r$/, '');
      pending = pending.slice(nl + 1);
      const at = line.indexOf('VMTEST ');
      if (at < 0) continue;
      const msg = line.slice(at);
      const open = /^VMTEST open=(\S+)$/.exec(msg);
      if (open) {
        relays.get(open[1]!)?.open();
        continue; // one per attach attempt: not worth a log line
      }
      parseLine(msg, result, (s) => (failing = s), failing);
      process.stderr.write(`[vm ${opts.label} +${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}\n`);
      opts.onLine?.(msg);
    }
  };
  child.stdout.on('data', (d: Buffer) => onText(d.toString('latin1')));
  child.stderr.on('data', (d: Buffer) => onText(d.toString('latin1')));
  const timer = setTimeout(() => {
    result.timedOut = true;
    kill(pid);
  }, opts.timeoutMs);
  await new Promise<void>((resolve) => {
    child.on('exit', () => resolve());
    child.on('error', () => resolve());
  });
  clearTimeout(timer);
  live.delete(pid);
  for (const r of relays.values()) await r.close();
  result.wallMs = Date.now() - t0;
  writeFileSync(join(opts.workDir, `console-${opts.label}.log`), result.console);
  return result;
}

function parseLine(msg: string, r: VmResult, setFailing: (s: VmStep | undefined) => void, failing: VmStep | undefined): void {
  let m = /^VMTEST step=(\S+) (ok|fail)(?: rc=\d+)? t=([\d.]+)/.exec(msg);
  if (m) {
    const s: VmStep = { name: m[1], ok: m[2] === 'ok', seconds: Number(m[3]), log: [] };
    r.steps.push(s);
    setFailing(s.ok ? undefined : s);
    return;
  }
  if (msg.startsWith('VMTEST log | ')) {
    failing?.log.push(msg.slice('VMTEST log | '.length));
    return;
  }
  m = /^VMTEST sum (\S+) (\S+) ([0-9a-f]{64})$/.exec(msg);
  if (m) {
    r.sums.set(`${m[1]} ${m[2]}`, m[3]);
    return;
  }
  m = /^VMTEST extent (\S+) (\S+) (\d+)$/.exec(msg);
  if (m) {
    r.extents.set(`${m[1]} ${m[2]}`, Number(m[3]));
    return;
  }
  m = /^VMTEST done rc=(\d+)/.exec(msg);
  if (m) r.rc = Number(m[1]);
}

/** One line per step, for the test's log and failure messages. */
export function describe(r: VmResult): string {
  const lines = r.steps.map((s) => `  ${s.ok ? 'ok  ' : 'FAIL'} ${s.name} (${s.seconds.toFixed(2)} s)${s.ok ? '' : '\n' + s.log.map((l) => '       | ' + l).join('\n')}`);
  lines.push(`  guest rc=${r.rc ?? 'none'}${r.timedOut ? ' (TIMED OUT, qemu killed)' : ''}, wall ${(r.wallMs / 1000).toFixed(1)} s`);
  return lines.join('\n');
}
