/**
 * A small fake NBD server that plays a broken or hostile remote, for the tests no real
 * server imitates. It listens on 127.0.0.1 (a port the kernel picks), does a correct
 * fixed-newstyle handshake (NBD_OPT_GO or NBD_OPT_EXPORT_NAME) over an in-memory disk, and
 * then misbehaves as `mode` says on the first `misbehave` requests (all by default),
 * answering the rest honestly. Stopped with stop() (it runs in the test's own process).
 */
import { createServer, type Server, type Socket } from 'node:net';
import { encodeGreeting, encodeInfoExport, encodeOptionReply, writeSimpleReply } from '../src/nbd/codec.js';
import { Cmd, FLAG_FIXED_NEWSTYLE, FLAG_NO_ZEROES, IHAVEOPT, Info, Opt, Rep, SIMPLE_REPLY_SIZE, STRUCTURED_REPLY_MAGIC, TF } from '../src/nbd/protocol.js';

export type HostileMode =
  | 'honest'
  | 'wrong-handle' // replies carry a cookie that was never sent
  | 'duplicate-reply' // every reply is sent twice
  | 'short-reply-close' // half a reply, then the connection is closed
  | 'stall-mid-reply' // a READ reply's header and half its payload, then silence (connection kept open)
  | 'stall-before-reply' // the request is read, no reply ever comes
  | 'error-writes' // WRITE, FLUSH, TRIM, WRITE_ZEROES fail with EIO; reads work
  | 'structured-garbage' // a structured reply chunk that was never negotiated
  | 'bad-magic' // a reply with a magic that is no NBD reply
  | 'huge-size' // the handshake announces an export beyond 2^63 bytes
  | 'bad-block-sizes'; // the handshake announces nonsense block sizes

export interface HostileNbdServer {
  readonly host: string;
  readonly port: number;
  readonly exportName: string;
  /** nbd://127.0.0.1:PORT/EXPORT */
  readonly uri: string;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Transmission requests received so far (all connections). */
  readonly requests: number;
  mode: HostileMode;
  /** What the disk holds (honest writes land here). */
  readonly disk: Buffer;
  stop(): Promise<void>;
}

const FLAGS = TF.HAS_FLAGS | TF.SEND_FLUSH | TF.SEND_FUA | TF.SEND_TRIM | TF.SEND_WRITE_ZEROES | TF.CAN_MULTI_CONN;

export async function startHostileNbdServer(opts: { mode: HostileMode; size?: number; misbehave?: number; exportName?: string }): Promise<HostileNbdServer> {
  const disk = Buffer.alloc(opts.size ?? 1 << 20);
  const exportName = opts.exportName ?? 'disk';
  const sockets = new Set<Socket>();
  let connections = 0;
  let requests = 0;
  let misbehaveLeft = opts.misbehave ?? Infinity;
  const state = { mode: opts.mode };

  const server: Server = createServer((sock) => {
    connections++;
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => undefined);
    serveConnection(sock, {
      disk,
      mode: () => state.mode,
      nextRequest: () => {
        requests++;
        if (misbehaveLeft <= 0) return 'honest';
        misbehaveLeft--;
        return state.mode;
      },
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  return {
    host: '127.0.0.1',
    port,
    exportName,
    uri: `nbd://127.0.0.1:${port}/${exportName}`,
    get connections() {
      return connections;
    },
    get requests() {
      return requests;
    },
    get mode() {
      return state.mode;
    },
    set mode(m: HostileMode) {
      state.mode = m;
    },
    disk,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

interface ConnectionContext {
  disk: Buffer;
  /** The server's mode (for the handshake). */
  mode(): HostileMode;
  /** Counts a request and says how to answer it. */
  nextRequest(): HostileMode;
}

/** Reads exact byte counts from a socket. */
function reader(sock: Socket): (n: number) => Promise<Buffer> {
  let buf = Buffer.alloc(0);
  let waiter: { n: number; resolve: (b: Buffer) => void } | undefined;
  const pump = (): void => {
    if (!waiter || buf.length < waiter.n) return;
    const w = waiter;
    waiter = undefined;
    const out = buf.subarray(0, w.n);
    buf = buf.subarray(w.n);
    w.resolve(out);
  };
  sock.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    pump();
  });
  return (n) => new Promise((resolve) => {
    waiter = { n, resolve };
    pump();
  });
}

function serveConnection(sock: Socket, ctx: ConnectionContext): void {
  const read = reader(sock);
  void (async () => {
    if (!(await handshake(sock, read, ctx))) return;
    for (;;) {
      const h = await read(28);
      const type = h.readUInt16BE(6);
      const cookie = h.readBigUInt64BE(8);
      const offset = Number(h.readBigUInt64BE(16));
      const length = h.readUInt32BE(24);
      const data = type === Cmd.WRITE ? await read(length) : undefined;
      if (type === Cmd.DISC) return void sock.end();
      answer(sock, ctx.nextRequest(), ctx.disk, { type, cookie, offset, length, data });
    }
  })().catch(() => sock.destroy());
}

async function handshake(sock: Socket, read: (n: number) => Promise<Buffer>, ctx: ConnectionContext): Promise<boolean> {
  sock.write(encodeGreeting(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES));
  const clientFlags = (await read(4)).readUInt32BE(0);
  for (;;) {
    const h = await read(16);
    if (h.readBigUInt64BE(0) !== IHAVEOPT) {
      sock.destroy();
      return false;
    }
    const option = h.readUInt32BE(8);
    await read(h.readUInt32BE(12)); // the export name and info requests: one export, answered alike
    if (option === Opt.EXPORT_NAME) {
      const b = Buffer.alloc(clientFlags & 2 ? 10 : 134);
      b.writeBigUInt64BE(exportSize(ctx), 0);
      b.writeUInt16BE(FLAGS, 8);
      sock.write(b);
      return true;
    }
    if (option !== Opt.GO && option !== Opt.INFO) {
      sock.write(encodeOptionReply(option, Rep.ERR_UNSUP));
      continue;
    }
    const info = encodeInfoExport(0, FLAGS);
    info.writeBigUInt64BE(exportSize(ctx), 2);
    sock.write(encodeOptionReply(option, Rep.INFO, info));
    if (ctx.mode() === 'bad-block-sizes') {
      const bs = Buffer.alloc(14);
      bs.writeUInt16BE(Info.BLOCK_SIZE, 0);
      bs.writeUInt32BE(3, 2); // not a power of two
      bs.writeUInt32BE(0, 6);
      bs.writeUInt32BE(1, 10); // maximum below preferred
      sock.write(encodeOptionReply(option, Rep.INFO, bs));
    }
    sock.write(encodeOptionReply(option, Rep.ACK));
    if (option === Opt.GO) return true;
  }
}

function exportSize(ctx: ConnectionContext): bigint {
  return ctx.mode() === 'huge-size' ? 2n ** 63n + 4096n : BigInt(ctx.disk.length);
}

interface Req {
  type: number;
  cookie: bigint;
  offset: number;
  length: number;
  data: Buffer | undefined;
}

function simple(cookie: bigint, error: number, magic?: number): Buffer {
  const b = Buffer.alloc(SIMPLE_REPLY_SIZE);
  writeSimpleReply(b, 0, { error, cookie });
  if (magic !== undefined) b.writeUInt32BE(magic, 0);
  return b;
}

function answer(sock: Socket, mode: HostileMode, disk: Buffer, r: Req): void {
  const inRange = r.offset + r.length <= disk.length;
  const isWrite = r.type === Cmd.WRITE || r.type === Cmd.FLUSH || r.type === Cmd.TRIM || r.type === Cmd.WRITE_ZEROES;
  if (mode === 'error-writes' && isWrite) return void sock.write(simple(r.cookie, 5));
  if (!inRange) return void sock.write(simple(r.cookie, 22));
  if (r.type === Cmd.WRITE && r.data) r.data.copy(disk, r.offset);
  if (r.type === Cmd.WRITE_ZEROES || r.type === Cmd.TRIM) disk.fill(0, r.offset, r.offset + r.length);
  const payload = r.type === Cmd.READ ? Buffer.from(disk.subarray(r.offset, r.offset + r.length)) : Buffer.alloc(0);
  const reply = Buffer.concat([simple(r.cookie, 0), payload]);
  switch (mode) {
    case 'wrong-handle':
      return void sock.write(Buffer.concat([simple(r.cookie + 0x1000n, 0), payload]));
    case 'duplicate-reply':
      return void sock.write(Buffer.concat([reply, reply]));
    case 'short-reply-close':
      sock.write(reply.subarray(0, Math.max(8, SIMPLE_REPLY_SIZE + (payload.length >> 1))));
      return void sock.end();
    case 'stall-mid-reply':
      // Only a READ has a payload to stop in the middle of; the rest is answered.
      return void sock.write(payload.length ? reply.subarray(0, SIMPLE_REPLY_SIZE + (payload.length >> 1)) : reply);
    case 'stall-before-reply':
      return;
    case 'structured-garbage': {
      const chunk = Buffer.alloc(20 + 8);
      chunk.writeUInt32BE(STRUCTURED_REPLY_MAGIC, 0);
      chunk.writeUInt16BE(1, 4); // NBD_REPLY_FLAG_DONE
      chunk.writeUInt16BE(1, 6); // NBD_REPLY_TYPE_OFFSET_DATA
      chunk.writeBigUInt64BE(r.cookie, 8);
      chunk.writeUInt32BE(8, 16);
      chunk.fill(0xa5, 20);
      return void sock.write(chunk);
    }
    case 'bad-magic':
      return void sock.write(Buffer.concat([simple(r.cookie, 0, 0xdeadbeef), payload]));
    default:
      return void sock.write(reply);
  }
}
