/**
 * The peer every cipher figure is compared with: `openssl speed -evp aes-256-xts -bytes N`,
 * run in the same process tree and moment as our own measurement, parsed from its
 * machine-readable output (-mr: the `+F:` line holds bytes per second). By default openssl
 * speed counts user CPU time; `elapsed` switches it to wall-clock time (-elapsed).
 * See openssl-speed(1).
 */
import { spawnSync } from 'node:child_process';
import { NbdcryptError } from '../../errors.js';

/** MB/s (10^6 bytes) of AES-256-XTS over `bytes`-byte calls for `seconds` seconds, one thread. */
export function opensslSpeed(bytes: number, seconds: number, elapsed = false): number {
  const args = ['speed', '-mr', '-evp', 'aes-256-xts', '-bytes', String(bytes), '-seconds', String(Math.max(1, Math.round(seconds)))];
  if (elapsed) args.push('-elapsed');
  const r = spawnSync('openssl', args, { encoding: 'utf8', timeout: (seconds + 30) * 1000 });
  if (r.error) throw new NbdcryptError('ENOTSUP', `cannot run 'openssl speed': ${r.error.message}; install the openssl package`);
  if (r.status !== 0) throw new NbdcryptError('EIO', `'openssl ${args.join(' ')}' failed with status ${r.status}: ${r.stderr.trim().split('\n')[0]}`);
  const line = r.stdout.split('\n').find((l) => /^\+F:\d+:AES-256-XTS:/i.test(l));
  const value = line === undefined ? NaN : Number(line.split(':')[3]);
  if (!Number.isFinite(value) || value <= 0) {
    throw new NbdcryptError('EIO', `could not parse 'openssl speed' output (no +F line for AES-256-XTS): ${r.stdout.trim().slice(0, 200)}`);
  }
  return value / 1e6;
}
