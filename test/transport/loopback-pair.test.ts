/**
 * The loopback TCP pair that ssh+cmd:// gives `ssh -W` as its standard input and output
 * (src/transport/loopback-pair.ts): bytes flow both ways, the listener is gone once the pair
 * exists, and a child process that inherits one end talks through it like through a pipe.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { once } from 'node:events';
import { loopbackPair } from '../../src/transport/loopback-pair.js';

test('a connected pair on 127.0.0.1 whose listener is closed', async () => {
  const { ours, theirs } = await loopbackPair(5000);
  try {
    assert.equal(ours.remoteAddress, '127.0.0.1');
    assert.equal(theirs.remotePort, ours.localPort);
    theirs.resume();
    const got = once(theirs, 'data');
    ours.write('to them');
    assert.equal(String((await got)[0]), 'to them');
    const back = once(ours, 'data');
    theirs.write('to us');
    assert.equal(String((await back)[0]), 'to us');
    // Nobody else can connect to the port the pair came from.
    const stranger = connect({ host: '127.0.0.1', port: ours.remotePort! });
    const [err] = (await once(stranger, 'error')) as [NodeJS.ErrnoException];
    assert.equal(err.code, 'ECONNREFUSED');
  } finally {
    ours.destroy();
    theirs.destroy();
  }
});

test('a child reads and writes its end as standard input and output', async () => {
  const { ours, theirs } = await loopbackPair(5000);
  const child = spawn('sh', ['-c', 'read line; echo "got $line"'], { stdio: [theirs, theirs, 'inherit'] });
  theirs.destroy();
  try {
    const chunks: Buffer[] = [];
    ours.on('data', (d: Buffer) => chunks.push(d));
    ours.write('hello\n');
    await once(ours, 'end');
    assert.equal(Buffer.concat(chunks).toString(), 'got hello\n');
  } finally {
    ours.destroy();
    child.kill();
  }
});
