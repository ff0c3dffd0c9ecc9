/**
 * qemu's own LUKS1 implementation as a second oracle beside cryptsetup: `qemu-img create -f
 * luks` formats LUKS1 images with any cipher qemu has (Twofish and Serpent included, which
 * cryptsetup cannot use here without the kernel's crypto API), and qemu-io reads and writes
 * plaintext through qemu's luks driver on any LUKS1 image, cryptsetup's too. The passphrase
 * goes through a secret object backed by a file, never the command line.
 * Spec: qemu-img(1), qemu-io(1), qemu's "luks" block driver options.
 */
import { requireTool, run } from './tools.js';

export interface QemuLuksFormat {
  /** qemu's cipher-alg, e.g. "twofish-256", "aes-128". */
  cipherAlg: string;
  cipherMode: 'xts' | 'cbc' | 'ecb';
  /** qemu's ivgen-alg: plain64, plain, essiv. */
  ivgenAlg: 'plain64' | 'plain' | 'essiv';
  /** LUKS1 hash-spec (PBKDF2 and AF): sha1, sha256, sha512, ripemd160. */
  hashAlg: string;
}

function secret(passFile: string): string[] {
  return ['--object', `secret,id=sec0,file=${passFile}`];
}

/**
 * Creates IMG with `payloadBytes` of encrypted data. qemu times PBKDF2 by thread CPU time,
 * which the kernel may account in whole scheduler ticks: a fast hash can measure 0 ms and
 * qemu gives up ("Unable to get accurate CPU usage"), so that one failure is retried.
 */
export function qemuLuksCreate(img: string, passFile: string, f: QemuLuksFormat, payloadBytes: number): void {
  const qemuImg = requireTool('qemu-img', 'qemu-utils');
  const ivHash = f.ivgenAlg === 'essiv' ? ',ivgen-hash-alg=sha256' : '';
  const opts = `key-secret=sec0,cipher-alg=${f.cipherAlg},cipher-mode=${f.cipherMode},ivgen-alg=${f.ivgenAlg}${ivHash},hash-alg=${f.hashAlg},iter-time=10`;
  let last = '';
  // Failures come in bursts (one CI run saw six in a row with no pause between them), so the
  // attempts are spread out: at most 20, a quarter second apart, about 5 s in all.
  for (let attempt = 0; attempt < 20; attempt++) {
    if (attempt > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 250);
    const r = run(qemuImg, ['create', '-q', '-f', 'luks', ...secret(passFile), '-o', opts, img, String(payloadBytes)], { allowFail: true, timeoutMs: 60_000 });
    if (r.status === 0) return;
    last = r.stderr.trim();
    if (!/accurate CPU usage/.test(last)) break;
  }
  throw new Error(`qemu-img create -f luks -o ${opts} failed: ${last}`);
}

/**
 * Runs qemu-io commands (`write -P 0x5a 0 1M`, `read -P 0x5a 0 1M`) on the plaintext of the
 * LUKS1 image through qemu's luks driver; throws when a command or a pattern check fails.
 */
export function qemuLuksIo(img: string, passFile: string, commands: string[]): string {
  const qemuIo = requireTool('qemu-io', 'qemu-utils');
  const args = [...secret(passFile), '--image-opts', `driver=luks,key-secret=sec0,file.filename=${img}`, ...commands.flatMap((c) => ['-c', c])];
  const r = run(qemuIo, args, { allowFail: true, timeoutMs: 120_000 });
  const out = r.stdout + r.stderr;
  if (r.status !== 0 || /Pattern verification failed|failed:|error/i.test(out)) throw new Error(`qemu-io (luks) ${commands.join('; ')} failed (status ${r.status}):\n${out.trim()}`);
  return out;
}
