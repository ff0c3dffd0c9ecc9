/**
 * SSH user authentication against a real sshd: an encrypted identity file unlocked through
 * the passphrase callback (asked once, not again on reconnect), keys held by a real
 * ssh-agent (SSH_AUTH_SOCK), a wrong passphrase ending in a clear EAUTH, and the CLI asking
 * for the identity's passphrase on the terminal (through script(1)'s pty), without echo.
 * Methods that cannot be used are named with why, and authentication goes on as OpenSSH's
 * does: a stale SSH_AUTH_SOCK, an identity file that is not a private key, an encrypted
 * identity with no terminal to ask its passphrase on.
 */
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isNbdcryptError } from '../../src/errors.js';
import type { ResilientDevice } from '../../src/resilient/resilient-device.js';
import { openTarget } from '../../src/backend/open-target.js';
import { startNbdServer, type NbdServerPeer } from '../../peers/nbd-server.js';
import { keygen, startSshd, type SshdPeer } from '../../peers/sshd.js';
import { requireTool, run, startProcess, waitFor, type Proc } from '../../peers/tools.js';

describe('ssh authentication methods', () => {
  let sshd: SshdPeer;
  let nbd: NbdServerPeer;
  let knownHosts: string;
  let encKey: string;
  let agent: Proc | undefined;
  const uri = (): string => `ssh://${sshd.user}@${sshd.host}:${sshd.port}/${nbd.exportName}?nbd=127.0.0.1:${nbd.port}`;
  before(async () => {
    delete process.env.SSH_AUTH_SOCK;
    sshd = await startSshd();
    nbd = await startNbdServer({ size: 1 << 20 });
    knownHosts = join(sshd.dir, 'known_hosts');
    writeFileSync(knownHosts, `${sshd.knownHostsLine}\n`);
    encKey = join(sshd.dir, 'encrypted_ed25519');
    appendFileSync(join(sshd.dir, 'authorized_keys'), `${keygen(encKey, 'ed25519', 'correct horse')}\n`);
  });
  after(async () => {
    delete process.env.SSH_AUTH_SOCK;
    await agent?.stop();
    await sshd?.stop();
    await nbd?.stop();
  });

  it('unlocks an encrypted identity through the passphrase callback, once, even across a reconnect', async () => {
    const asked: string[] = [];
    const dev = (await openTarget(uri(), {
      knownHostsPath: knownHosts,
      identity: [encKey],
      sshConfigPath: '/dev/null',
      connections: 1,
      askPassphrase: async (path) => {
        asked.push(path);
        return 'correct horse';
      },
    })) as ResilientDevice;
    await dev.write(0, Buffer.alloc(4096, 9));
    assert.ok((await sshd.killConnections()) > 0);
    assert.ok((await dev.read(0, 4096)).equals(Buffer.alloc(4096, 9)), 'works after the reconnect');
    await dev.close();
    assert.deepEqual(asked, [encKey]);
  });

  it('a wrong passphrase ends in EAUTH naming what was tried', async () => {
    await assert.rejects(
      openTarget(uri(), { knownHostsPath: knownHosts, identity: [encKey], sshConfigPath: '/dev/null', connections: 1, askPassphrase: async () => 'wrong' }),
      (e) => isNbdcryptError(e, 'EAUTH') && /authentication/.test((e as Error).message),
    );
  });

  it('the CLI asks for an encrypted identity\'s passphrase on the terminal, without echo', () => {
    const script = requireTool('script', 'bsdutils');
    const bin = join(process.cwd(), 'bin', 'nbdcrypt.js');
    // The export holds no LUKS header: getting as far as EBADHDR (exit 4) proves SSH let us in.
    const cmd = `${process.execPath} ${bin} dump '${uri()}' --identity ${encKey} --known-hosts ${knownHosts} --connections 1`;
    const r = run('sh', ['-c', `(sleep 2; printf 'correct horse\\r'; sleep 5) | ${script} -qec "${cmd}" /dev/null`], {
      allowFail: true,
      timeoutMs: 60_000,
    });
    assert.match(r.stdout, /Enter passphrase for SSH key '.*encrypted_ed25519'/);
    assert.doesNotMatch(r.stdout, /correct horse/, 'the passphrase is not echoed');
    assert.equal(r.status, 4, `expected EBADHDR after logging in: ${r.stdout}`);
  });

  it('uses keys held by ssh-agent (SSH_AUTH_SOCK)', async () => {
    const sock = join(sshd.dir, 'agent.sock');
    agent = startProcess(requireTool('ssh-agent', 'openssh-client'), ['-D', '-a', sock]);
    await waitFor('ssh-agent socket', () => existsSync(sock), 10_000);
    run('ssh-add', [sshd.userKey], { env: { ...process.env, SSH_AUTH_SOCK: sock } });
    // No identity given: only the agent holds an authorized key (the default ~/.ssh keys are not authorized).
    const dev = await openTarget(uri(), { knownHostsPath: knownHosts, sshConfigPath: '/dev/null', connections: 1, sshAgentSocket: sock });
    await dev.close();
  });

  it('a stale SSH_AUTH_SOCK is warned about and the --identity is used (not "cannot reach host")', () => {
    const bin = join(process.cwd(), 'bin', 'nbdcrypt.js');
    const stale = join(sshd.dir, 'gone-agent.sock');
    const r = run(process.execPath, [bin, 'dump', uri(), '--identity', sshd.userKey, '--known-hosts', knownHosts, '--connections', '1'], {
      allowFail: true,
      timeoutMs: 60_000,
      env: { ...process.env, SSH_AUTH_SOCK: stale },
    });
    // The export holds no LUKS header: EBADHDR (exit 4) proves SSH let us in.
    assert.equal(r.status, 4, r.stderr);
    assert.match(r.stderr, new RegExp(`warn: ssh-agent at ${stale} \\(SSH_AUTH_SOCK\\) cannot be used: .*; trying the next authentication method`));
    assert.doesNotMatch(r.stderr, /cannot reach/);
  });

  it('an identity that is not a private key, or encrypted with no terminal, is named with why (EAUTH, exit 6)', () => {
    const bin = join(process.cwd(), 'bin', 'nbdcrypt.js');
    const notAKey = join(sshd.dir, 'not-a-key');
    writeFileSync(notAKey, 'this is not a key\n', { mode: 0o600 });
    const env: NodeJS.ProcessEnv = { ...process.env, HOME: sshd.dir };
    delete env.SSH_AUTH_SOCK;
    const cases: Array<[string, RegExp]> = [
      [notAKey, /identity file .*not-a-key cannot be used: not a private key nbdcrypt can read/],
      [`${sshd.userKey}.pub`, /identity file .*\.pub cannot be used: it holds a public key; give the private key file/],
      [encKey, /identity file .*encrypted_ed25519 cannot be used: it is encrypted and no passphrase was given/],
    ];
    for (const [identity, why] of cases) {
      // Standard input is not a terminal, so nobody can be asked for a passphrase.
      const r = run(process.execPath, [bin, 'dump', uri(), '--identity', identity, '--known-hosts', knownHosts, '--connections', '1'], { allowFail: true, timeoutMs: 60_000, env, input: '' });
      assert.equal(r.status, 6, r.stderr);
      assert.match(r.stderr, why);
      assert.match(r.stderr, /error: SSH authentication as .* failed \(tried key .* \(unusable: /);
    }
  });
});
