/**
 * A byte-level NBD client for server tests: send arbitrary bytes (valid or hostile), read
 * exact byte counts with a time bound, see whether the server closed. Uses the codec for the
 * well-formed messages. Not a test file itself.
 */
import { connect, type Socket } from 'node:net';
import * as codec from '../../src/nbd/codec.js';
import { InputBuffer } from '../../src/nbd/input-buffer.js';
import { CLIENT_FIXED_NEWSTYLE, CLIENT_NO_ZEROES, Info, OPT_REPLY_MAGIC, Opt, Rep, SIMPLE_REPLY_SIZE } from '../../src/nbd/protocol.js';

export class RawConn {
  private readonly buf = new InputBuffer();
  private waiter: (() => void) | undefined;
  closed = false;
  readonly closedPromise: Promise<void>;

  private constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf.push(d);
      this.waiter?.();
    });
    socket.on('error', () => undefined);
    this.closedPromise = new Promise((resolve) =>
      socket.on('close', () => {
        this.closed = true;
        this.waiter?.();
        resolve();
      }),
    );
  }

  /** address: 'unix:/path' or 'tcp:HOST:PORT'. */
  static async open(address: string): Promise<RawConn> {
    const socket = address.startsWith('unix:')
      ? connect(address.slice(5))
      : connect(Number(address.slice(address.lastIndexOf(':') + 1)), address.slice(4, address.lastIndexOf(':')).replace(/^\[|\]$/g, ''));
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawConn(socket);
  }

  send(b: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(b);
  }

  get buffered(): number {
    return this.buf.available;
  }

  /** Reads exactly n bytes; throws if the server closes first or `timeoutMs` passes. */
  async read(n: number, timeoutMs = 5000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (this.buf.available < n) {
      if (this.closed) throw new Error(`server closed the connection (wanted ${n} bytes, have ${this.buf.available})`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${n} bytes (have ${this.buf.available})`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.waiter = undefined;
    }
    return this.buf.take(n);
  }

  /** Resolves true if the server closes within `timeoutMs`. */
  async waitClosed(timeoutMs = 5000): Promise<boolean> {
    let t: NodeJS.Timeout | undefined;
    const r = await Promise.race([this.closedPromise.then(() => true), new Promise<boolean>((res) => (t = setTimeout(() => res(false), timeoutMs)))]);
    clearTimeout(t);
    return r;
  }

  destroy(): void {
    this.socket.destroy();
  }

  async readOptionReply(timeoutMs = 5000): Promise<{ option: number; type: number; data: Buffer }> {
    const h = codec.decodeOptionReplyHeader(await this.read(20, timeoutMs));
    if (h.magic !== OPT_REPLY_MAGIC) throw new Error(`option reply with bad magic 0x${h.magic.toString(16)}`);
    const data = await this.read(h.length, timeoutMs);
    return { option: h.option, type: h.type, data: Buffer.from(data) };
  }

  async readSimpleReply(timeoutMs = 5000): Promise<{ magic: number; error: number; cookie: bigint }> {
    return codec.decodeSimpleReply(await this.read(SIMPLE_REPLY_SIZE, timeoutMs));
  }

  /** Greeting + client flags + OPT_GO; returns the export's size and flags. */
  async go(name = 'disk'): Promise<{ size: number; flags: number }> {
    await this.read(18);
    this.send(Buffer.from([0, 0, 0, CLIENT_FIXED_NEWSTYLE | CLIENT_NO_ZEROES]));
    const data = codec.encodeInfoRequest(name, [Info.BLOCK_SIZE]);
    this.send(Buffer.concat([codec.encodeOptionHeader(Opt.GO, data.length), data]));
    let size = -1;
    let flags = -1;
    for (;;) {
      const r = await this.readOptionReply();
      if (r.type === Rep.ACK) break;
      if (r.type !== Rep.INFO) throw new Error(`OPT_GO answered with reply type 0x${r.type.toString(16)}: ${r.data.toString()}`);
      const info = codec.decodeInfoReply(r.data);
      if (info && info.type === Info.EXPORT && 'size' in info) {
        size = Number(info.size);
        flags = info.flags;
      }
    }
    return { size, flags };
  }

  request(type: number, cookie: bigint, offset: bigint | number, length: number, flags = 0, payload?: Buffer): void {
    const h = codec.encodeRequestHeader({ type, flags, cookie, offset: BigInt(offset), length });
    this.send(payload ? Buffer.concat([h, payload]) : h);
  }
}
