/**
 * The NBD front end: serves one or more BlockDevices to any number of clients on unix and
 * TCP listeners. Transmission flags are derived from each device's caps in one place
 * (`transmissionFlagsOf`), so the server only advertises what the stack below can honour.
 * Spec: docs/formats.md (NBD).
 */
import { createServer, type Server, type Socket } from 'node:net';
import { unlink } from 'node:fs/promises';
import type { BlockCaps, BlockDevice } from '../block/block-device.js';
import { NbdcryptError } from '../errors.js';
import type { BlockSizeInfo } from './codec.js';
import { ServerConnection, defaultLimits, type ConnectionLimits, type ServedExport, type ServerStats } from './server-connection.js';
import { InFlightBudget } from './in-flight-budget.js';
import { bind, parseListenSpec } from './listen.js';
import { MAX_PAYLOAD, TF } from './protocol.js';
import { defaultRequestIo, type RequestIo } from '../block/request-io.js';
import { enlargeSocketSendBuffer } from '../unix-send-buffer.js';

export interface ExportSpec {
  name: string;
  description?: string;
  device: BlockDevice;
}

export type { ServerStats } from './served-export.js';


/** What we advertise for a device: exactly what its caps promise (docs/formats.md, NBD flags). */
export function transmissionFlagsOf(caps: BlockCaps): number {
  let f = TF.HAS_FLAGS | TF.SEND_WRITE_ZEROES | TF.SEND_CACHE;
  if (caps.readOnly) f |= TF.READ_ONLY;
  if (caps.flush) f |= TF.SEND_FLUSH;
  if (caps.flush && caps.fua) f |= TF.SEND_FUA;
  if (caps.trim) f |= TF.SEND_TRIM;
  if (caps.multiConn) f |= TF.CAN_MULTI_CONN;
  // FAST_ZERO is always advertised: without native zeroing we answer it with a fast ENOTSUP.
  f |= TF.SEND_FAST_ZERO;
  return f;
}

const isPow2 = (n: number) => Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;

/** The constraints the NBD protocol puts on NBD_INFO_BLOCK_SIZE; a bad spec is a programming error. */
function checkBlockSize(name: string, b: BlockSizeInfo): void {
  const ok =
    isPow2(b.minimum) && b.minimum <= 65536 && isPow2(b.preferred) && b.preferred >= Math.max(b.minimum, 512) && b.maximum >= b.preferred;
  if (!ok) {
    throw new NbdcryptError(
      'EUSAGE',
      `export '${name}': block sizes ${b.minimum}/${b.preferred}/${b.maximum} break the NBD rules (minimum a power of 2 <= 64 KiB, preferred a power of 2 >= max(minimum, 512), maximum >= preferred)`,
    );
  }
}

export class NbdServer {
  readonly stats: ServerStats = { connections: 0, requests: 0, bytesRead: 0, bytesWritten: 0, inFlight: 0, errors: 0 };
  private readonly exports: ServedExport[];
  private readonly servers: { server: Server; unixPath?: string }[] = [];
  private readonly connections = new Set<ServerConnection>();
  private closing = false;
  private readonly limits: ConnectionLimits;
  private readonly budget: InFlightBudget | undefined;
  private readonly io: RequestIo;

  /**
   * `maxTotalInFlightBytes` bounds the request bytes in flight over all connections together
   * (memory); `limits` apply to each connection; `io` gives the request buffers and where
   * socket reads are reported (default: fresh buffers, nothing reported).
   */
  constructor(opts: { exports: ExportSpec[]; limits?: Partial<ConnectionLimits>; maxTotalInFlightBytes?: number; io?: RequestIo }) {
    if (opts.exports.length === 0) throw new NbdcryptError('EUSAGE', 'NbdServer needs at least one export');
    const seen = new Set<string>();
    this.exports = opts.exports.map((e) => {
      if (seen.has(e.name)) throw new NbdcryptError('EUSAGE', `export name '${e.name}' is used twice; export names must be unique`);
      seen.add(e.name);
      // What the stack states, within what NBD can carry.
      const { minimum, preferred, maximum } = e.device.blockSize;
      const blockSize: BlockSizeInfo = { minimum, preferred, maximum: Math.min(maximum, MAX_PAYLOAD) };
      checkBlockSize(e.name, blockSize);
      return {
        device: e.device,
        info: {
          name: e.name,
          description: e.description ?? '',
          size: e.device.size,
          transmissionFlags: transmissionFlagsOf(e.device.caps),
          blockSize,
        },
      };
    });
    this.limits = { ...defaultLimits, ...opts.limits };
    this.budget = opts.maxTotalInFlightBytes === undefined ? undefined : new InFlightBudget(opts.maxTotalInFlightBytes);
    this.io = opts.io ?? defaultRequestIo;
  }

  /** Starts listening on `spec` ('unix:PATH' | 'tcp:HOST:PORT'); resolves with the bound address. */
  async listen(spec: string, opts: { listenAny?: boolean } = {}): Promise<string> {
    if (this.closing) throw new NbdcryptError('ECLOSED', 'NBD server: already closed');
    const parsed = parseListenSpec(spec);
    // allowHalfOpen: a client that shuts down its sending side still gets the replies to
    // the requests it sent (the connection drains like after NBD_CMD_DISC, then closes).
    const server = createServer({ noDelay: true, allowHalfOpen: true }, (socket) => {
      if (this.closing) {
        socket.destroy();
        return;
      }
      if (parsed.kind === 'unix') enlargeSocketSendBuffer(socket);
      this.stats.connections++;
      const conn = new ServerConnection(socket, this.exports, this.stats, this.limits, this.budget, this.io);
      this.connections.add(conn);
      void conn.closed.then(() => this.connections.delete(conn));
    });
    const address = await bind(server, parsed, opts);
    this.servers.push({ server, unixPath: parsed.kind === 'unix' ? parsed.path : undefined });
    return address;
  }

  /**
   * Serves `socket` in the transmission phase from its first byte, without a handshake: for a
   * kernel nbd device configured over netlink, which learnt the export's size and flags from
   * us out of band (see exportFacts).
   */
  adopt(socket: Socket, exportName: string): void {
    const served = this.exports.find((e) => e.info.name === exportName);
    if (!served) throw new NbdcryptError('EUSAGE', `no export named '${exportName}' to adopt a connection for`);
    if (this.closing) {
      socket.destroy();
      return;
    }
    this.stats.connections++;
    const conn = new ServerConnection(socket, this.exports, this.stats, this.limits, this.budget, this.io, served);
    this.connections.add(conn);
    void conn.closed.then(() => this.connections.delete(conn));
  }

  /** Size, transmission flags and block sizes of an export: what a handshake would tell a client. */
  exportFacts(exportName: string): { size: number; transmissionFlags: number; blockSize: BlockSizeInfo } {
    const served = this.exports.find((e) => e.info.name === exportName);
    if (!served) throw new NbdcryptError('EUSAGE', `no export named '${exportName}'`);
    return { size: served.info.size, transmissionFlags: served.info.transmissionFlags, blockSize: served.info.blockSize };
  }

  /** Number of open client connections. */
  get connectionCount(): number {
    return this.connections.size;
  }

  /** Bytes held for all clients: input not yet parsed and replies not yet sent. */
  get bufferedBytes(): number {
    let n = 0;
    for (const c of this.connections) n += c.bufferedBytes;
    return n;
  }

  /**
   * Stops accepting, lets every connection finish the requests already in flight, then closes
   * them; connections still open after `graceMs` are dropped.
   */
  async close(graceMs = 30_000): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const stopped = this.servers.map(
      ({ server }) => new Promise<void>((resolve) => server.close(() => resolve())),
    );
    for (const c of this.connections) c.shutdown('server shutting down');
    const all = Promise.all([...this.connections].map((c) => c.closed));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        for (const c of this.connections) c.abort('server shutdown grace period over');
        resolve();
      }, graceMs);
    });
    await Promise.race([all, timeout]);
    clearTimeout(timer);
    await Promise.all(stopped);
    // net.Server removes its unix socket on close; make sure, without failing if it is gone.
    for (const { unixPath } of this.servers) if (unixPath) await unlink(unixPath).catch(() => undefined);
  }
}
