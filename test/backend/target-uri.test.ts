/**
 * Target URI parsing: NBD URI conventions (nbd://, nbd+unix://) and our ssh:// and
 * ssh+cmd:// extensions; bad URIs fail with EUSAGE naming what is wrong.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isNbdcryptError } from '../../src/errors.js';
import { isRemoteTargetUri, parseTargetUri } from '../../src/backend/target-uri.js';

describe('target URIs', () => {
  it('parses nbd:// with and without port, IPv6 and empty export', () => {
    assert.deepEqual(parseTargetUri('nbd://example.com/disk'), { kind: 'nbd', host: 'example.com', port: 10809, exportName: 'disk' });
    assert.deepEqual(parseTargetUri('nbd://10.0.0.1:1234/a%20b'), { kind: 'nbd', host: '10.0.0.1', port: 1234, exportName: 'a b' });
    assert.deepEqual(parseTargetUri('nbd://[::1]:10810/'), { kind: 'nbd', host: '::1', port: 10810, exportName: '' });
  });

  it('parses nbd+unix:///export?socket=PATH', () => {
    assert.deepEqual(parseTargetUri('nbd+unix:///disk?socket=/run/nbd.sock'), { kind: 'nbd+unix', socket: '/run/nbd.sock', exportName: 'disk' });
  });

  it('parses ssh:// and ssh+cmd:// with remote nbd address or socket', () => {
    assert.deepEqual(parseTargetUri('ssh://alice@host.example:2222/disk'), {
      kind: 'ssh', user: 'alice', host: 'host.example', port: 2222, exportName: 'disk', remote: { host: '127.0.0.1', port: 10809 },
    });
    assert.deepEqual(parseTargetUri('ssh://host/disk?nbd=10.0.0.5:10900'), {
      kind: 'ssh', user: undefined, host: 'host', port: undefined, exportName: 'disk', remote: { host: '10.0.0.5', port: 10900 },
    });
    assert.deepEqual(parseTargetUri('ssh+cmd://host/disk?socket=/var/run/nbd.sock'), {
      kind: 'ssh+cmd', user: undefined, host: 'host', port: undefined, exportName: 'disk', remote: { socket: '/var/run/nbd.sock' },
    });
    assert.ok(isRemoteTargetUri('ssh://h/x') && isRemoteTargetUri('nbd+unix:///x?socket=/s') && !isRemoteTargetUri('file:/x') && !isRemoteTargetUri('/dev/sda'));
  });

  it('parses sftp:// with an absolute path and /~/ for the login directory', () => {
    assert.deepEqual(parseTargetUri('sftp://u123@box.example:23/data/disk.img'), { kind: 'sftp', user: 'u123', host: 'box.example', port: 23, path: '/data/disk.img' });
    assert.deepEqual(parseTargetUri('sftp://box.example/~/backups/disk%20a.img'), { kind: 'sftp', user: undefined, host: 'box.example', port: undefined, path: 'backups/disk a.img' });
    assert.ok(isRemoteTargetUri('sftp://h/x'));
  });

  for (const [bad, why] of [
    ['sftp://host/', /path of the image/],
    ['sftp://host/~/', /path of the image/],
    ['sftp://host/data/', /path of the image/],
    ['sftp://host/disk?socket=/s', /no query/],
    ['sftp://bob:pw@host/disk', /passwords/],
    ['ssh://bob:secret@host/disk', /passwords/],
    ['nbd+unix:///disk', /socket=PATH/],
    ['nbd://host:99999/disk', /port/],
    ['ssh://host/disk?nbd=a:1&socket=/s', /either/],
    ['ssh://host/disk?colour=red', /colour/],
    ['nbd:///disk', /host/],
  ] as const) {
    it(`refuses ${bad}`, () => {
      assert.throws(() => parseTargetUri(bad), (e) => isNbdcryptError(e, 'EUSAGE') && why.test((e as Error).message));
    });
  }
});
