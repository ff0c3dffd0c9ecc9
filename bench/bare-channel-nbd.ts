/**
 * The bare ssh2 channels of bare-channel.ts behind nbdcrypt's own NBD server, so that fio
 * drives them exactly as it drives every other row: writes go into one exec channel running
 * `cat > /dev/null`, reads come from another running `cat /dev/zero` (whatever the offset).
 * No XTS, no remote NBD, no replay log: what is left of nbdcrypt's write and read path is the
 * NBD front end, which every row pays too.
 *
 * Why this row exists: bare-channel.ts alone moves bytes that no load generator made, while
 * every NBD row shares the local CPU with fio (about 0.2 s of CPU per GiB written at 1 MiB
 * QD16, `fio --ioengine=nbd` against nbdkit's null plugin). Compared with that, a path that
 * does strictly more work than the bare channel had to beat it to reach 0.9×: the target
 * measured the load generator, not the encryption. This row charges the bare channel the same
 * load generator and NBD front end (docs/performance.md, SSH).
 * Run: node dist/bench/bare-channel-nbd.js --port P --user U --key FILE --socket PATH
 *      [--cipher aes128-gcm@openssh.com] [--size 1G]; prints one line once it listens, serves
 *      until SIGTERM.
 */
import { fileURLToPath } from 'node:url';
import type { ClientChannel } from 'ssh2';
import { DEFAULT_BLOCK_SIZES, checkRange, type BlockCaps, type BlockDevice } from '../src/block/block-device.js';
import { NbdcryptError } from '../src/errors.js';
import { readEnvironment } from '../src/cli/environment.js';
import { createServeRuntime } from '../src/cli/serve-runtime.js';
import { NbdServer } from '../src/nbd/server.js';
import { parseSize } from '../src/size.js';
import { sessionFromArgs, sessionOptions, type SshClient } from './bare-channel.js';
import { benchArgs } from './bench-args.js';

function execChannel(c: SshClient, command: string): Promise<ClientChannel> {
  return new Promise((resolve, reject) => c.exec(command, (err, ch) => (err ? reject(err) : resolve(ch))));
}

interface PendingRead {
  length: number;
  resolve(b: Buffer): void;
}

/** Writes into `sink`, reads from `source` in the order asked; nothing is stored. */
export class BareChannelDevice implements BlockDevice {
  readonly caps: BlockCaps = { flush: false, fua: false, trim: false, zeroes: false, multiConn: false, readOnly: false };
  readonly blockSize = DEFAULT_BLOCK_SIZES;
  private readonly reads: PendingRead[] = [];

  constructor(
    readonly size: number,
    private readonly sink: ClientChannel,
    private readonly source: ClientChannel,
  ) {
    // A 'readable' listener keeps the source paused: ssh2 grants window only as we read.
    source.on('readable', () => this.pull());
  }

  static async open(c: SshClient, size: number): Promise<BareChannelDevice> {
    const [sink, source] = await Promise.all([execChannel(c, 'cat > /dev/null'), execChannel(c, 'cat /dev/zero')]);
    return new BareChannelDevice(size, sink, source);
  }

  read(offset: number, length: number): Promise<Buffer> {
    checkRange(this.size, offset, length, 'bare channel read');
    return new Promise((resolve) => {
      this.reads.push({ length, resolve });
      this.pull();
    });
  }

  write(offset: number, data: Buffer): Promise<void> {
    checkRange(this.size, offset, data.length, 'bare channel write');
    // ssh2 calls back once the bytes are in SSH packets (or the window let them go).
    return new Promise((resolve, reject) => this.sink.write(data, (err) => (err ? reject(err) : resolve())));
  }

  async flush(): Promise<void> {}

  trim(): Promise<void> {
    return Promise.reject(new NbdcryptError('ENOTSUP', 'bare channel: no trim'));
  }

  writeZeroes(offset: number, length: number): Promise<void> {
    return this.write(offset, Buffer.alloc(length));
  }

  async close(): Promise<void> {
    this.sink.end();
    this.source.destroy();
  }

  private pull(): void {
    while (this.reads.length > 0) {
      const b = this.source.read(this.reads[0]!.length) as Buffer | null;
      if (b === null) return;
      this.reads.shift()!.resolve(b);
    }
  }
}

async function main(): Promise<void> {
  const v = benchArgs('Usage: node dist/bench/bare-channel-nbd.js --port P --user U --key FILE --socket PATH [--cipher C] [--size 1G]', {
    ...sessionOptions,
    socket: { type: 'string' },
    size: { type: 'string', default: '1G' },
  });
  if (!v.socket) throw new Error('--socket is required');
  const c = await sessionFromArgs(v);
  const device = await BareChannelDevice.open(c, parseSize(v.size!, '--size'));
  const server = new NbdServer({ exports: [{ name: 'disk', device }], io: createServeRuntime(readEnvironment()).io });
  await server.listen(`unix:${v.socket}`);
  process.stdout.write(`listening on unix:${v.socket}\n`);
  process.once('SIGTERM', () => {
    void server
      .close(5000)
      .then(() => device.close())
      .finally(() => {
        c.end();
        process.exit(0);
      });
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((e: Error) => {
    process.stderr.write(`bench bare-channel-nbd: ${e.message}\n`);
    process.exit(1);
  });
}
