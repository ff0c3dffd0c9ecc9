/**
 * Host-side servers the VM test's guest talks to: a raw export of an image file on a unix
 * socket (nbdkit, for the dm-crypt checks), a TCP relay in front of nbdcrypt's remote
 * (peers/nbd-server.ts) whose `cut()` drops every connection at once (the link cut),
 * and nbdcrypt's own `serve`. All are stopped by PID or closed by the test.
 * NBD: docs/formats.md.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { freePort, requireTool, startProcess, waitFor, type Proc } from '../../peers/tools.js';

const nbdcryptBin = fileURLToPath(new URL('../../../bin/nbdcrypt.js', import.meta.url));

async function waitOrDie(what: string, proc: Proc, cond: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  let exited = false;
  void proc.exited.then(() => (exited = true));
  try {
    await waitFor(what, () => {
      if (exited) throw new Error(`${what}: the process exited early: ${proc.stderr().trim().slice(-2000)}`);
      return cond();
    }, timeoutMs);
  } catch (e) {
    await proc.stop(1000);
    throw e;
  }
}

/** An image file exported as-is on a unix socket (nbdkit file plugin, any export name). */
export async function startRawExport(image: string, socket: string): Promise<Proc> {
  const nbdkit = requireTool('nbdkit', 'nbdkit');
  rmSync(socket, { force: true }); // a stale socket file would make nbdkit fail to bind
  const proc = startProcess(nbdkit, ['-f', '-U', socket, 'file', image]);
  await waitOrDie(`nbdkit on ${socket}`, proc, () => existsSync(socket), 15_000);
  return proc;
}

/** TCP relay 127.0.0.1:port → 127.0.0.1:target. cut() destroys every live pair and refuses
 * new connections for `downMs`: what a dropped link looks like to nbdcrypt. */
export class CutRelay {
  readonly port: number;
  connections = 0;
  cuts = 0;
  private readonly server: Server;
  private readonly live = new Set<Socket>();
  private downUntil = 0;

  private constructor(server: Server, port: number) {
    this.server = server;
    this.port = port;
  }

  static async start(target: number): Promise<CutRelay> {
    const server = createServer();
    const port = await freePort();
    const relay = new CutRelay(server, port);
    server.on('connection', (a: Socket) => relay.accept(a, target));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    return relay;
  }

  private accept(a: Socket, target: number): void {
    if (Date.now() < this.downUntil) {
      a.destroy();
      return;
    }
    this.connections++;
    const b = createConnection({ host: '127.0.0.1', port: target });
    for (const s of [a, b]) {
      this.live.add(s);
      s.on('error', () => undefined);
      s.on('close', () => {
        this.live.delete(s);
        a.destroy();
        b.destroy();
      });
    }
    a.pipe(b);
    b.pipe(a);
  }

  cut(downMs: number): number {
    this.cuts++;
    this.downUntil = Date.now() + downMs;
    const n = this.live.size / 2;
    for (const s of [...this.live]) s.destroy();
    return n;
  }

  async close(): Promise<void> {
    for (const s of [...this.live]) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** `nbdcrypt serve ARGS --listen unix:SOCKET --name NAME`, ready when it says so on stdout. */
export async function startNbdcryptServe(args: string[], socket: string, name: string): Promise<Proc> {
  rmSync(socket, { force: true });
  const proc = startProcess(process.execPath, [nbdcryptBin, 'serve', ...args, '--listen', `unix:${socket}`, '--name', name]);
  await waitOrDie(`nbdcrypt serve on ${socket}`, proc, () => proc.stdout().includes('listening on'), 60_000);
  return proc;
}

/** Help text of an nbdcrypt command ('' if the command cannot print it). */
export function nbdcryptHelp(command: string): string {
  const r = spawnSync(process.execPath, [nbdcryptBin, command, '--help'], { timeout: 20_000 });
  return `${r.stdout?.toString() ?? ''}${r.stderr?.toString() ?? ''}`;
}

export { nbdcryptBin };
