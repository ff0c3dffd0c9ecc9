/**
 * The environment is read in one place (src/cli/environment.ts): no other module of src/
 * mentions process.env, and readEnvironment maps every switch of docs/environment.md to the
 * option the layers receive, with the documented defaults.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isNbdcryptError } from '../../src/errors.js';
import { readEnvironment } from '../../src/cli/environment.js';

const root = resolve(fileURLToPath(import.meta.url), '../../../..'); // dist/test/cli/x.js → repository

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return tsFiles(p);
    return p.endsWith('.ts') ? [p] : [];
  });
}

test('process.env appears in exactly one module of src/: src/cli/environment.ts', () => {
  const files = tsFiles(join(root, 'src'));
  assert.ok(files.length > 50, `found the sources (${files.length} files)`);
  const readers = files.filter((f) => /process\s*\.\s*env\b|process\s*\[\s*['"]env['"]\s*\]/.test(readFileSync(f, 'utf8'))).map((f) => relative(root, f));
  assert.deepEqual(readers, ['src/cli/environment.ts']);
});

test('defaults: nothing set', () => {
  assert.deepEqual(readEnvironment({}), {
    logLevel: 'info',
    engines: { xts: undefined, argon2: 'native' },
    fileFastPaths: { nowaitIo: true, writeBatch: true, readahead: false },
    youngGc: true,
    sshAgentSocket: undefined,
    runtimeDir: undefined,
    notifySocket: undefined,
    debug: false,
  });
});

test('every switch set', () => {
  const env = readEnvironment({
    NBDCRYPT_LOG: 'debug',
    NBDCRYPT_ENGINE: 'node',
    NBDCRYPT_ARGON2: 'noble',
    NBDCRYPT_NOWAIT_IO: '0',
    NBDCRYPT_WRITE_BATCH: '0',
    NBDCRYPT_READAHEAD: '1',
    NBDCRYPT_YOUNG_GC: '0',
    SSH_AUTH_SOCK: '/run/agent.sock',
    XDG_RUNTIME_DIR: '/run/user/0',
    NOTIFY_SOCKET: '/run/systemd/notify',
    NBDCRYPT_DEBUG: '1',
  });
  assert.deepEqual(env, {
    logLevel: 'debug',
    engines: { xts: 'node', argon2: 'noble' },
    fileFastPaths: { nowaitIo: false, writeBatch: false, readahead: true },
    youngGc: false,
    sshAgentSocket: '/run/agent.sock',
    runtimeDir: '/run/user/0',
    notifySocket: '/run/systemd/notify',
    debug: true,
  });
});

test('values that name nothing mean the default, except an unknown engine (EUSAGE)', () => {
  const env = readEnvironment({ NBDCRYPT_LOG: 'loud', NBDCRYPT_ARGON2: 'x', NBDCRYPT_NOWAIT_IO: 'no', NBDCRYPT_READAHEAD: 'yes', NBDCRYPT_YOUNG_GC: 'off', NBDCRYPT_ENGINE: '', SSH_AUTH_SOCK: '', XDG_RUNTIME_DIR: '', NOTIFY_SOCKET: '', NBDCRYPT_DEBUG: 'yes' });
  assert.deepEqual(env, readEnvironment({}));
  assert.throws(() => readEnvironment({ NBDCRYPT_ENGINE: 'aesni' }), (e) => isNbdcryptError(e, 'EUSAGE') && /NBDCRYPT_ENGINE='aesni' is not an engine; use native, node or reference/.test(e.message));
});
