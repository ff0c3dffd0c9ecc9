/**
 * The ssh2 transport reads the user's configuration through OpenSSH (`ssh -G`), so an
 * `Include`d file and a `Match` block count exactly as they do for ssh; the built-in parser,
 * the fallback without OpenSSH, sees neither. Then a real connection: a target that names only
 * an alias defined in an included file reaches a real sshd with the user and key a Match
 * block gives.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isNbdcryptError } from '../../src/errors.js';
import { hostSshConfig } from '../../src/transport/openssh-config.js';
import { resolveSshConfig } from '../../src/transport/ssh-config.js';
import { SftpClient } from '../../src/sftp/sftp-client.js';
import type { FileAttrs } from '../../src/sftp/sftp-wire.js';
import { SshTransport } from '../../src/transport/ssh.js';
import { startSshd, type SshdPeer } from '../../peers/sshd.js';
import { requireTool, scratchDir } from '../../peers/tools.js';

const dir = scratchDir('nbdcrypt-openssh-config-');

/** A main file that includes conf.d/*.conf, then a Match block, then global defaults. */
function writeConfig(name: string, box: { port: number; user: string; key: string }): string {
  const sub = join(dir.path, `${name}.d`);
  mkdirSync(sub, { recursive: true });
  writeFileSync(join(sub, 'box.conf'), ['Host box', '  HostName 127.0.0.1', `  Port ${box.port}`, ''].join('\n'));
  const main = join(dir.path, name);
  writeFileSync(
    main,
    [
      `Include ${sub}/*.conf`,
      'Match originalhost box',
      `  User ${box.user}`,
      `  IdentityFile ${box.key}`,
      '  IdentitiesOnly yes',
      'Host *',
      '  ConnectTimeout 7',
      '',
    ].join('\n'),
  );
  return main;
}

describe('OpenSSH configuration through ssh -G', () => {
  let sshd: SshdPeer | undefined;
  before(() => requireTool('ssh', 'openssh-client'));
  after(async () => {
    await sshd?.stop();
    dir.remove();
  });

  it('applies Include and Match as ssh does (the built-in parser sees neither)', () => {
    const cfg = writeConfig('unit', { port: 2222, user: 'backup', key: `${dir.path}/keys/%r_%h` });
    const eff = hostSshConfig({ alias: 'box', configPath: cfg });
    assert.equal(eff.hostName, '127.0.0.1');
    assert.equal(eff.port, 2222);
    assert.equal(eff.user, 'backup');
    assert.deepEqual(eff.identityFiles, [`${dir.path}/keys/backup_127.0.0.1`]);
    assert.equal(eff.identitiesOnly, true);
    assert.equal(eff.defaultIdentities, false);
    assert.equal(eff.connectTimeoutSec, 7);
    // The user and port of the target win over the configuration, as on ssh's command line.
    const given = hostSshConfig({ alias: 'box', configPath: cfg, user: 'alice', port: 2200 });
    assert.equal(given.user, 'alice');
    assert.equal(given.port, 2200);
    const builtIn = resolveSshConfig('box', cfg);
    assert.equal(builtIn.hostName, 'box', 'the fallback parser does not follow Include');
    assert.equal(builtIn.user, undefined, 'the fallback parser skips Match blocks');
  });

  it('a configuration ssh rejects is one clear line naming ssh -G', () => {
    const bad = join(dir.path, 'bad');
    writeFileSync(bad, 'Host box\n  NoSuchOption yes\n');
    assert.throws(
      () => hostSshConfig({ alias: 'box', configPath: bad }),
      (e: unknown) => isNbdcryptError(e, 'EUSAGE') && /^ssh -G box: .*line 2: Bad configuration option: nosuchoption/.test(e.message) && !e.message.includes('\n'),
    );
  });

  it('a target naming only an included alias reaches a real sshd with the Match block\'s user and key', async () => {
    sshd = await startSshd({ restricted: true });
    const knownHosts = join(dir.path, 'known_hosts');
    writeFileSync(knownHosts, `${sshd.knownHostsLine}\n`);
    const cfg = writeConfig('real', { port: sshd.port, user: sshd.user, key: sshd.userKey });
    const t = new SshTransport({ host: 'box', sshConfigPath: cfg, knownHostsPath: knownHosts, description: 'sftp://box' });
    try {
      const sftp = await SftpClient.start(await t.openSftp());
      const st = await new Promise<FileAttrs>((resolve, reject) => sftp.stat(sshd!.sftpData.remote, (err, a) => (err ? reject(err) : resolve(a))));
      assert.equal((st.mode ?? 0) & 0o170000, 0o040000, 'the data directory is seen as a directory');
      sftp.end();
    } finally {
      await t.close();
    }
  });
});
