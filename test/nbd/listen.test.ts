/**
 * Binding a unix listener where something already is: a socket file left by a killed server
 * (bound, nobody listening) is replaced; a live socket and a regular file are refused, and the
 * file is left as it was.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { bind, parseListenSpec } from '../../src/nbd/listen.js';
import { isNbdcryptError } from '../../src/errors.js';
import { requireTool, run, scratchDir } from '../../peers/tools.js';

const close = (s: Server): Promise<void> => new Promise((r) => s.close(() => r()));

test('a stale socket file is replaced; a live socket or another file is refused', async () => {
  const dir = scratchDir('nbdcrypt-listen-');
  try {
    const stale = join(dir.path, 'stale.sock');
    // What a killed server leaves: a bound socket file with no process behind it.
    run(requireTool('python3', 'python3'), ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', stale]);
    const a = createServer();
    assert.equal(await bind(a, parseListenSpec(`unix:${stale}`)), `unix:${stale}`);

    const b = createServer();
    await assert.rejects(bind(b, parseListenSpec(`unix:${stale}`)), (e) => isNbdcryptError(e, 'ELISTEN') && /another server is listening/.test(String(e)));
    await close(a);

    const file = join(dir.path, 'notes.txt');
    writeFileSync(file, 'keep me');
    await assert.rejects(bind(createServer(), parseListenSpec(`unix:${file}`)), (e) => isNbdcryptError(e, 'ELISTEN') && /not a socket/.test(String(e)));
    assert.equal(readFileSync(file, 'utf8'), 'keep me');
  } finally {
    dir.remove();
  }
});
