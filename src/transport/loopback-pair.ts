/**
 * Two connected TCP sockets on 127.0.0.1, for a child process's standard input and output
 * (ssh-command.ts). Node's stdio pipes are unix socketpairs whose send buffer (about
 * 200 KiB) cannot be raised from Node, so a 1 MiB NBD write crosses it in several fill and
 * drain rounds, each a pair of wake-ups of the two processes that share a CPU; a loopback TCP
 * connection grows its buffers by itself, as the `ssh -L` tunnel's does (docs/performance.md,
 * SSH). The listener lives only until our own connection is accepted, and an accepted
 * connection whose peer is not our socket is dropped. Nagle's algorithm is off on both ends,
 * since small NBD requests and replies must not wait.
 */
import { createServer, connect, type Socket } from 'node:net';

/** `ours` stays in this process; `theirs` is handed to the child (its descriptor is duplicated). */
export function loopbackPair(timeoutMs: number): Promise<{ ours: Socket; theirs: Socket }> {
  return new Promise((resolve, reject) => {
    const server = createServer({ pauseOnConnect: true });
    let ours: Socket | undefined;
    let theirs: Socket | undefined;
    let connected = false;
    let done = false;
    const finish = (err: Error | undefined): void => {
      if (done || (!err && (!connected || !theirs))) return;
      done = true;
      clearTimeout(timer);
      server.close();
      if (err || !ours || !theirs) {
        ours?.destroy();
        theirs?.destroy();
        reject(err ?? new Error('loopback connection failed'));
        return;
      }
      ours.setNoDelay(true);
      theirs.setNoDelay(true);
      resolve({ ours, theirs });
    };
    const timer = setTimeout(() => finish(new Error(`no loopback connection within ${timeoutMs} ms`)), timeoutMs);
    server.on('error', (e) => finish(e));
    server.on('connection', (s) => {
      // Only the connection made below is ours: same port pair seen from both ends.
      if (theirs || !ours || s.remotePort !== ours.localPort || s.remoteAddress !== '127.0.0.1') {
        s.destroy();
        return;
      }
      theirs = s;
      finish(undefined);
    });
    server.listen(0, '127.0.0.1', () => {
      const addr = server.address();
      if (addr === null || typeof addr === 'string') return finish(new Error('loopback listener has no port'));
      const s = connect({ host: '127.0.0.1', port: addr.port }, () => {
        connected = true;
        finish(undefined);
      });
      ours = s;
      s.on('error', (e) => finish(e));
    });
  });
}
