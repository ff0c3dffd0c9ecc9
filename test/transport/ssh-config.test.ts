/**
 * Unit tests of the ~/.ssh/config subset, with OpenSSH's `ssh -G` (which prints the
 * resolved configuration) as the oracle: first value wins, wildcards and negation, Key=value,
 * several IdentityFile lines, `~` and %-token expansion, Match blocks skipped.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { resolveSshConfig } from '../../src/transport/ssh-config.js';
import { run, scratchDir } from '../../peers/tools.js';

const dir = scratchDir('nbdcrypt-sshcfg-');
const cfg = join(dir.path, 'config');
writeFileSync(
  cfg,
  [
    '# global defaults come last in effect: first value wins',
    'Host backup-*  !backup-old',
    '  HostName %h.internal.example',
    '  User=backup',
    '  Port 2222',
    '  IdentityFile ~/.ssh/backup_%r_%h',
    'Host backup-old',
    '  HostName 10.9.9.9',
    'Match host nothing-matches-this',
    '  User matched',
    'Host *',
    '  User fallback',
    '  Port 22',
    '  IdentityFile "/etc/keys/all users"',
    '  StrictHostKeyChecking accept-new',
    '  ConnectTimeout 7',
    '',
  ].join('\n'),
);

function sshG(alias: string): Map<string, string[]> {
  const out = run('ssh', ['-G', '-F', cfg, alias]).stdout;
  const m = new Map<string, string[]>();
  for (const line of out.split('\n')) {
    const i = line.indexOf(' ');
    if (i < 0) continue;
    const k = line.slice(0, i);
    m.set(k, [...(m.get(k) ?? []), line.slice(i + 1)]);
  }
  return m;
}

describe('ssh config resolution', () => {
  after(() => dir.remove());

  for (const alias of ['backup-eu', 'backup-old', 'plain.example']) {
    it(`agrees with ssh -G for ${alias}`, () => {
      const ours = resolveSshConfig(alias, cfg);
      const theirs = sshG(alias);
      assert.equal(ours.hostName, theirs.get('hostname')![0]);
      assert.equal(ours.user, theirs.get('user')![0]);
      assert.equal(String(ours.port), theirs.get('port')![0]);
      // ssh -G prints IdentityFile unexpanded; expand %r and %h with its own resolved values.
      const ids = theirs.get('identityfile')!.map((p) => p.replace(/^~/, homedir()).replace(/%r/g, theirs.get('user')![0]!).replace(/%h/g, theirs.get('hostname')![0]!));
      // ssh -G appends OpenSSH's default identities when none is configured; ours lists only configured ones.
      assert.deepEqual(ours.identityFiles, ids.slice(0, ours.identityFiles.length));
      assert.equal(ours.connectTimeoutSec, Number(theirs.get('connecttimeout')![0]));
      assert.equal(ours.strictHostKeyChecking, 'accept-new');
    });
  }

  it('expands tokens and keeps IdentityFile order', () => {
    const r = resolveSshConfig('backup-eu', cfg);
    assert.deepEqual(r.identityFiles, [join(homedir(), '.ssh', 'backup_backup_backup-eu.internal.example'), '/etc/keys/all users']);
  });

  it('a missing file gives defaults', () => {
    const r = resolveSshConfig('h', join(dir.path, 'absent'));
    assert.deepEqual(r, { hostName: 'h', user: undefined, port: undefined, identityFiles: [], defaultIdentities: true, identitiesOnly: false, userKnownHostsFile: undefined, strictHostKeyChecking: undefined, connectTimeoutSec: undefined, serverAliveIntervalSec: undefined, proxyJump: undefined, proxyCommand: undefined });
  });
});
