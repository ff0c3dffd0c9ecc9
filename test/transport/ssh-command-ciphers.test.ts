/**
 * The cipher order ssh+cmd:// gives `ssh -W` (src/transport/ssh-command-ciphers.ts), judged
 * by OpenSSH's own `ssh -G`: with a configuration that leaves Ciphers alone, AES-GCM goes to
 * the front and the rest of OpenSSH's list follows in its order; a configured list, for every
 * host or for this one, is left as it is; so are CPUs where AES-GCM is not known to be faster.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { preferredCipherArgs } from '../../src/transport/ssh-command-ciphers.js';
import { sshCommandArgs } from '../../src/transport/ssh-command.js';
import { requireTool, run, scratchDir } from '../../peers/tools.js';

const builtIn = (): string[] => /^ciphers (\S+)$/m.exec(run('ssh', ['-G', '-F', '/dev/null', 'h']).stdout)![1]!.split(',');

test('a default configuration gets AES-GCM first, then the rest of OpenSSH order', async () => {
  requireTool('ssh', 'openssh-client');
  const dir = scratchDir();
  try {
    const cfg = join(dir.path, 'ssh_config');
    writeFileSync(cfg, 'Host *\n  ServerAliveInterval 5\n');
    const args = await preferredCipherArgs(['-F', cfg, '-p', '2222', 'somehost'], 'x64');
    const defaults = builtIn();
    const gcm = defaults.filter((c) => c.endsWith('-gcm@openssh.com'));
    assert.deepEqual(args, ['-o', `Ciphers=${[...gcm, ...defaults.filter((c) => !gcm.includes(c))].join(',')}`]);
    // What ssh would then use, by its own account: AES-GCM first.
    const effective = /^ciphers (\S+)$/m.exec(run('ssh', ['-G', '-F', cfg, ...args, 'somehost']).stdout)![1]!.split(',');
    assert.equal(effective[0], 'aes128-gcm@openssh.com');
    assert.deepEqual([...effective].sort(), [...defaults].sort(), 'the same set of ciphers');
    assert.deepEqual(sshCommandArgs({ host: 'somehost' }, args).slice(-4), [...args, '--', 'somehost']);
  } finally {
    dir.remove();
  }
});

test('a configured cipher list, global or for the host, is kept; so are other CPUs', async () => {
  requireTool('ssh', 'openssh-client');
  const dir = scratchDir();
  try {
    const global = join(dir.path, 'global');
    writeFileSync(global, 'Ciphers aes256-ctr\n');
    assert.deepEqual(await preferredCipherArgs(['-F', global, 'somehost'], 'x64'), []);
    const perHost = join(dir.path, 'per-host');
    writeFileSync(perHost, 'Host somehost\n  Ciphers chacha20-poly1305@openssh.com\n');
    assert.deepEqual(await preferredCipherArgs(['-F', perHost, 'somehost'], 'x64'), []);
    assert.notDeepEqual(await preferredCipherArgs(['-F', perHost, 'otherhost'], 'x64'), [], 'the Host block does not apply to another host');
    assert.deepEqual(await preferredCipherArgs(['-F', '/dev/null', 'somehost'], 'riscv64'), []);
  } finally {
    dir.remove();
  }
});
