/**
 * Unit tests of our known_hosts reader against OpenSSH's own tools as the oracle:
 * ssh-keygen -H hashes entries we must match, ssh-keygen -l prints the fingerprint we must
 * reproduce; plus wildcard, negation, [host]:port, comma lists and markers.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { checkHostKey, entryMatchesHost, fingerprint, knownHostName, knownHostsLine, parseKnownHosts } from '../../src/transport/known-hosts.js';
import { keygen } from '../../peers/sshd.js';
import { run, scratchDir } from '../../peers/tools.js';

const dir = scratchDir('nbdcrypt-kh-');
const keyA = keygen(join(dir.path, 'a')).split(' ');
const keyB = keygen(join(dir.path, 'b')).split(' ');
const keyR = keygen(join(dir.path, 'r'), 'ecdsa').split(' ');
const blob = (k: string[]): Buffer => Buffer.from(k[1]!, 'base64');

describe('known_hosts parser', () => {
  after(() => dir.remove());

  it('names hosts like OpenSSH', () => {
    assert.equal(knownHostName('Example.COM', 22), 'example.com');
    assert.equal(knownHostName('10.0.0.1', 2222), '[10.0.0.1]:2222');
  });

  it('computes the same SHA256 fingerprint as ssh-keygen -l', () => {
    const want = run('ssh-keygen', ['-l', '-E', 'sha256', '-f', join(dir.path, 'a.pub')]).stdout.split(' ')[1];
    assert.equal(fingerprint(blob(keyA)), want);
  });

  it('matches plain patterns: comma lists, wildcards, negation, [host]:port', () => {
    const e = parseKnownHosts(
      [
        `alpha,beta.example.org ${keyA[0]} ${keyA[1]}`,
        `*.lan,!evil.lan ${keyA[0]} ${keyA[1]}`,
        `[gamma]:2222 ${keyA[0]} ${keyA[1]}`,
        `host?? ${keyA[0]} ${keyA[1]}`,
      ].join('\n'),
    );
    assert.equal(e.length, 4);
    assert.ok(entryMatchesHost(e[0]!, 'beta.example.org'));
    assert.ok(!entryMatchesHost(e[0]!, 'example.org'));
    assert.ok(entryMatchesHost(e[1]!, 'box.lan'));
    assert.ok(!entryMatchesHost(e[1]!, 'evil.lan'));
    assert.ok(entryMatchesHost(e[2]!, '[gamma]:2222'));
    assert.ok(!entryMatchesHost(e[2]!, 'gamma'));
    assert.ok(entryMatchesHost(e[3]!, 'host12'));
    assert.ok(!entryMatchesHost(e[3]!, 'host123'));
  });

  it('matches entries hashed by ssh-keygen -H, for port 22 and [host]:port', () => {
    const path = join(dir.path, 'kh');
    writeFileSync(path, `server.example ${keyA[0]} ${keyA[1]}\n[10.1.2.3]:2200 ${keyB[0]} ${keyB[1]}\n`);
    run('ssh-keygen', ['-H', '-f', path]);
    const text = readFileSync(path, 'utf8');
    assert.ok(text.startsWith('|1|') && !text.includes('server.example'));
    const e = parseKnownHosts(text);
    assert.deepEqual(checkHostKey(e, 'server.example', 22, blob(keyA)), { status: 'ok' });
    assert.deepEqual(checkHostKey(e, '10.1.2.3', 2200, blob(keyB)), { status: 'ok' });
    assert.deepEqual(checkHostKey(e, '10.1.2.3', 22, blob(keyB)), { status: 'unknown' });
    assert.equal(checkHostKey(e, 'server.example', 22, blob(keyB)).status, 'changed');
  });

  it('reports unknown, changed and revoked keys; ignores @cert-authority and comments', () => {
    const e = parseKnownHosts(
      [
        '# a comment',
        '',
        `@cert-authority * ${keyB[0]} ${keyB[1]}`,
        `@revoked * ${keyR[0]} ${keyR[1]}`,
        `h1 ${keyA[0]} ${keyA[1]} a trailing comment`,
        `@bogus-marker h2 ${keyA[0]} ${keyA[1]}`,
      ].join('\n'),
    );
    assert.deepEqual(checkHostKey(e, 'h1', 22, blob(keyA)), { status: 'ok' });
    assert.deepEqual(checkHostKey(e, 'h1', 22, blob(keyB)), { status: 'changed', line: 5 });
    assert.deepEqual(checkHostKey(e, 'h2', 22, blob(keyA)), { status: 'unknown' }, 'unknown markers are ignored, CA lines never vouch');
    assert.deepEqual(checkHostKey(e, 'anything', 22, blob(keyR)), { status: 'revoked', line: 4 });
  });

  it('builds the line to add in OpenSSH format', () => {
    assert.equal(knownHostsLine('h', 2022, blob(keyA)), `[h]:2022 ${keyA[0]} ${keyA[1]}`);
    assert.equal(knownHostsLine('h', 22, blob(keyA)), `h ${keyA[0]} ${keyA[1]}`);
  });
});
