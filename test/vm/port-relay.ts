/**
 * Host end of one guest virtio-serial port: qemu dials this unix socket at start (and 1 s
 * after every disconnect), but the relay connects to the real NBD server only when the guest
 * says it is about to use the port (the console line `VMTEST open=NAME`, printed by attach()
 * in guest-lib.sh). Without it the server would see qemu's connection sit idle from boot
 * until the guest's nbd-client speaks — for a device used late in a slow TCG boot, longer
 * than a server's handshake timeout (nbdcrypt's is 60 s), after which the attach stalls.
 * NBD servers speak first (the greeting), so nothing is lost by connecting late.
 * Recipe: test/vm/README.md (Recipe).
 */
import { rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export class PortRelay {
  /** Times the relay connected the guest to the server (one per attach attempt that got one). */
  links = 0;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  /** qemu's current connection, not yet linked to the server. */
  private waiting: Socket | undefined;
  /** The guest asked before qemu had (re)connected: link as soon as it does. */
  private wanted = false;
  /** A guest ↔ server pair is up (a repeated open is then a retry on it, not a new ask). */
  private linked = false;

  private constructor(server: Server, readonly path: string, private readonly upstream: string) {
    this.server = server;
  }

  static async start(path: string, upstream: string): Promise<PortRelay> {
    rmSync(path, { force: true });
    const server = createServer();
    const relay = new PortRelay(server, path, upstream);
    server.on('connection', (s: Socket) => relay.accept(s));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
    return relay;
  }

  private track(s: Socket): void {
    this.sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => this.sockets.delete(s));
  }

  private accept(q: Socket): void {
    this.track(q);
    q.pause();
    q.on('close', () => {
      if (this.waiting === q) this.waiting = undefined;
    });
    this.waiting = q;
    if (this.wanted) this.open();
  }

  /** The guest is about to use the port: connect qemu's waiting connection to the server. */
  open(): void {
    const q = this.waiting;
    if (!q) {
      if (!this.linked) this.wanted = true;
      return;
    }
    this.wanted = false;
    this.waiting = undefined;
    this.links++;
    this.linked = true;
    const up = createConnection(this.upstream);
    this.track(up);
    // Either side closing ends the pair: qemu then re-dials and waits for the next open.
    up.on('close', () => {
      this.linked = false;
      q.destroy();
    });
    q.on('close', () => up.destroy());
    up.on('connect', () => {
      q.pipe(up);
      up.pipe(q);
      q.resume();
    });
  }

  async close(): Promise<void> {
    for (const s of [...this.sockets]) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    rmSync(this.path, { force: true });
  }
}
