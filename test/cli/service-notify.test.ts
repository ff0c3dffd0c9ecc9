// serve speaks the service manager's readiness protocol (systemd Type=notify) with no library:
// a real unix datagram socket (python3's socket module, as the receiving end) is named in
// NOTIFY_SOCKET, and must receive READY=1 once serve listens and STOPPING=1 on SIGTERM. The
// unit template in contrib/ must ask for exactly that protocol.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startNbdcrypt, repoRoot } from '../../peers/nbdcrypt.js';
import { requireTool, scratchDir, waitFor } from '../../peers/tools.js';

const RECEIVER = `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("bound", flush=True)
s.settimeout(60)
for _ in range(2):
    print(s.recv(4096).decode().replace("\\n", "|"), flush=True)
`;

test('serve sends READY=1 after listening and STOPPING=1 on SIGTERM to NOTIFY_SOCKET', { timeout: 90_000 }, async () => {
  const python = requireTool('python3', 'python3');
  const dir = scratchDir('nbdcrypt-notify-');
  const path = join(dir.path, 'notify.sock');
  const receiver = spawn(python, ['-c', RECEIVER, path], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  receiver.stdout.on('data', (d: Buffer) => (out += d.toString()));
  try {
    await waitFor('the datagram receiver to bind', () => out.includes('bound'), 20_000);
    const srv = await startNbdcrypt(['serve', '--unencrypted', 'memory:16M', '--listen', `unix:${join(dir.path, 'nbd.sock')}`], {
      env: { ...process.env, NOTIFY_SOCKET: path },
    });
    await waitFor('READY=1', () => /READY=1/.test(out), 20_000);
    assert.match(out, new RegExp(`MAINPID=${srv.proc.pid}`));
    assert.equal(await srv.stop(), 0);
    await waitFor('STOPPING=1', () => /STOPPING=1/.test(out), 20_000);
  } finally {
    receiver.kill('SIGKILL');
    dir.remove();
  }
});

test('the systemd unit template is Type=notify, restarts after a crash, and serves with --attach', () => {
  const unit = readFileSync(join(repoRoot, 'contrib', 'nbdcrypt@.service'), 'utf8');
  assert.match(unit, /^Type=notify$/m);
  assert.match(unit, /^Restart=(always|on-failure)$/m);
  assert.match(unit, /^ExecStart=.*nbdcrypt serve .*--attach \$\{DEVICE\}/m);
  assert.match(unit, /^RestartPreventExitStatus=2 3 4 5 6$/m);
});
