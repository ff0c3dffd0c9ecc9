/**
 * One bare ssh2 exec channel each way, the most nbdcrypt's SSH transport could move: write =
 * `cat > /dev/null` fed 1 MiB chunks, read = `head -c N /dev/zero`, on one session with one
 * cipher. The functions serve bench/remote.ts in-process; run as a script it measures one
 * sshd in its own process, so bench/e2e-compare can start it on the local side's CPUs
 * (src/cli/bench/cpu-pinning.ts) like every other client it measures.
 * Run: node dist/bench/bare-channel.js --port P --user U --key FILE [--bytes 1G] [--rounds 3]
 *      [--cipher aes128-gcm@openssh.com]   → one JSON line {"writeMbps":…,"readMbps":…}
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import ssh2 from 'ssh2';
import { parseSize } from '../src/size.js';
import { benchArgs } from './bench-args.js';

const MiB = 1024 * 1024;
export type SshClient = InstanceType<typeof ssh2.Client>;

export function bareSession(o: { host: string; port: number; user: string; keyFile: string; cipher: string }): Promise<SshClient> {
  return new Promise((resolve, reject) => {
    const c = new ssh2.Client();
    c.on('ready', () => resolve(c)).on('error', reject);
    c.connect({ host: o.host, port: o.port, username: o.user, privateKey: readFileSync(o.keyFile), algorithms: { cipher: [o.cipher] as never } });
  });
}

/** The command-line options that say which session to open (this script's and bare-channel-nbd.ts's). */
export const sessionOptions = {
  host: { type: 'string', default: '127.0.0.1' },
  port: { type: 'string' },
  user: { type: 'string' },
  key: { type: 'string' },
  cipher: { type: 'string', default: 'aes128-gcm@openssh.com' },
} as const;

/** Opens the session that parsed `sessionOptions` name. */
export function sessionFromArgs(v: { host?: string; port?: string; user?: string; key?: string; cipher?: string }): Promise<SshClient> {
  if (!v.port || !v.user || !v.key) throw new Error('--port, --user and --key are required');
  return bareSession({ host: v.host!, port: Number(v.port), user: v.user, keyFile: v.key, cipher: v.cipher! });
}

/** Writes `bytes` into `cat > /dev/null`; resolves once the remote side has closed. */
export function bareWrite(c: SshClient, bytes: number): Promise<void> {
  return new Promise((resolve, reject) => {
    c.exec('cat > /dev/null', (err, ch) => {
      if (err) return reject(err);
      const chunk = randomBytes(MiB);
      let sent = 0;
      const pump = (): void => {
        while (sent < bytes) {
          sent += MiB;
          if (!ch.write(chunk)) return void ch.once('drain', pump);
        }
        ch.end();
      };
      ch.on('close', () => resolve());
      ch.resume();
      pump();
    });
  });
}

/** Reads `bytes` of `head -c bytes /dev/zero`. */
export function bareRead(c: SshClient, bytes: number): Promise<void> {
  return new Promise((resolve, reject) => {
    c.exec(`head -c ${bytes} /dev/zero`, (err, ch) => {
      if (err) return reject(err);
      let got = 0;
      ch.on('data', (b: Buffer) => (got += b.length));
      ch.on('close', () => (got === bytes ? resolve() : reject(new Error(`bare read got ${got} of ${bytes} bytes`))));
    });
  });
}

/** MB/s of `op` moving `bytes`. */
export async function mbpsOf(bytes: number, op: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await op();
  return bytes / 1e6 / ((performance.now() - t0) / 1000);
}

async function main(): Promise<void> {
  const v = benchArgs('Usage: node dist/bench/bare-channel.js --port P --user U --key FILE [--bytes 1G] [--rounds 3] [--cipher C]', {
    ...sessionOptions,
    bytes: { type: 'string', default: '1G' },
    rounds: { type: 'string', default: '3' },
  });
  const bytes = parseSize(v.bytes!, '--bytes');
  const c = await sessionFromArgs(v);
  let writeMbps = 0;
  let readMbps = 0;
  // Best of N, interleaved: the machine is shared, and the best round is the least disturbed.
  for (let i = 0; i < Number(v.rounds); i++) {
    writeMbps = Math.max(writeMbps, await mbpsOf(bytes, () => bareWrite(c, bytes)));
    readMbps = Math.max(readMbps, await mbpsOf(bytes, () => bareRead(c, bytes)));
  }
  c.end();
  process.stdout.write(`${JSON.stringify({ writeMbps, readMbps })}\n`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((e: Error) => {
    process.stderr.write(`bench bare-channel: ${e.message}\n`);
    process.exit(1);
  });
}
