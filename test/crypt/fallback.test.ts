/**
 * "A machine without a compiler still installs and runs": scripts/build-native.js with no
 * usable C compiler prints one warning line and exits 0 (so `npm install` succeeds), and a
 * copy of nbdcrypt without the addon picks the node engine with one warning line and serves
 * EncryptedDevice correctly, for aes-xts-plain64 and for twofish-cbc-essiv:sha256 (portable
 * TypeScript Twofish). NBDCRYPT_ENGINE=node, as the CLI reads it (cli/environment.ts), forces
 * the same engine in a full checkout.
 * Both run in child processes so this process's loaded addon cannot leak in; their
 * ciphertext is checked against the native engine here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, symlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { scratchDir } from '../../peers/tools.js';
import { createSectorCipher } from '../../src/crypt/sector-cipher.js';

const root = resolve(fileURLToPath(import.meta.url), '../../../..'); // dist/test/crypt/x.js → repo
const key = Buffer.alloc(64);
for (let i = 0; i < 64; i++) key[i] = (i * 29 + 3) & 0xff;

/** Child script: EncryptedDevice over MemoryDevice with the engine the environment asks for; prints the engine and the ciphertext. */
function childScript(distSrc: string, cipher: Cipher): string {
  const u = (p: string) => JSON.stringify('file://' + join(distSrc, p));
  return `
    const { EncryptedDevice } = await import(${u('crypt/encrypted-device.js')});
    const { MemoryDevice } = await import(${u('block/memory-device.js')});
    const { readEnvironment } = await import(${u('cli/environment.js')});
    const key = Buffer.alloc(64); for (let i = 0; i < 64; i++) key[i] = (i * 29 + 3) & 0xff;
    const lower = new MemoryDevice(1 << 20);
    const dev = new EncryptedDevice(lower, { key: key.subarray(0, ${cipher.keyBytes}), dataOffset: 4096, sectorSize: 4096, cipher: ${JSON.stringify(cipher.name)}, engine: readEnvironment().engines.xts });
    const plain = Buffer.alloc(200000); for (let i = 0; i < plain.length; i++) plain[i] = (i * 13) & 0xff;
    await Promise.all([dev.write(1000, plain.subarray(0, 100000)), dev.write(101000, plain.subarray(100000))]);
    const back = await dev.read(1000, 200000);
    if (!back.equals(plain)) throw new Error('read back differs');
    const ct = await lower.read(4096, 212992);
    console.log(JSON.stringify({ engine: dev.engine, ct: ct.toString('base64') }));
    await dev.close();`;
}

interface Cipher {
  name: string;
  keyBytes: number;
}
const AES_XTS: Cipher = { name: 'aes-xts-plain64', keyBytes: 64 };
const TWOFISH_CBC: Cipher = { name: 'twofish-cbc-essiv:sha256', keyBytes: 32 };

function expectedCiphertext(cipher: Cipher): Buffer {
  const plain = Buffer.alloc(200000);
  for (let i = 0; i < plain.length; i++) plain[i] = (i * 13) & 0xff;
  const img = Buffer.alloc(212992);
  plain.copy(img, 1000);
  const c = createSectorCipher(cipher.name, key.subarray(0, cipher.keyBytes), 'native');
  c.encrypt(img, 0, 4096);
  c.destroy();
  return img;
}

function runChild(cwd: string, distSrc: string, env: NodeJS.ProcessEnv, cipher = AES_XTS): { engine: string; ct: Buffer; stderr: string } {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', childScript(distSrc, cipher)], { cwd, env, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { engine: string; ct: string };
  return { engine: out.engine, ct: Buffer.from(out.ct, 'base64'), stderr: r.stderr };
}

function checkCiphertext(ct: Buffer, cipher = AES_XTS): void {
  const want = expectedCiphertext(cipher);
  // Sector 0 and 48 are partial (RMW over noise), the 47 sectors between are fully known.
  assert.ok(ct.subarray(4096, 48 * 4096).equals(want.subarray(4096, 48 * 4096)), `node-engine ${cipher.name} ciphertext equals native ciphertext`);
}

test('NBDCRYPT_ENGINE=node runs the EncryptedDevice path on the node engine', () => {
  const env = { ...process.env, NBDCRYPT_ENGINE: 'node' };
  const r = runChild(root, join(root, 'dist', 'src'), env);
  assert.equal(r.engine, 'node');
  assert.equal(r.stderr, '', 'a forced engine prints no warning');
  checkCiphertext(r.ct);
});

test('without a C compiler: install still succeeds, the node engine is used with one warning', () => {
  const dir = scratchDir();
  try {
    const pkg = dir.path;
    mkdirSync(join(pkg, 'native'), { recursive: true });
    cpSync(join(root, 'native', 'binding.gyp'), join(pkg, 'native', 'binding.gyp'));
    cpSync(join(root, 'native', 'src'), join(pkg, 'native', 'src'), { recursive: true });
    cpSync(join(root, 'scripts'), join(pkg, 'scripts'), { recursive: true });
    cpSync(join(root, 'package.json'), join(pkg, 'package.json'));
    cpSync(join(root, 'dist', 'src'), join(pkg, 'dist', 'src'), { recursive: true });
    symlinkSync(join(root, 'node_modules'), join(pkg, 'node_modules'));

    const env: NodeJS.ProcessEnv = { ...process.env, CC: '/nonexistent/cc', CXX: '/nonexistent/c++' };
    delete env.NBDCRYPT_ENGINE;
    const b = spawnSync(process.execPath, ['scripts/build-native.js'], { cwd: pkg, env, encoding: 'utf8', timeout: 300_000 });
    assert.equal(b.status, 0, `build-native.js must not fail the install: ${b.stderr}`);
    const lines = (b.stdout + b.stderr).trim().split('\n');
    assert.equal(lines.length, 1, `exactly one line of output, got:\n${b.stdout}${b.stderr}`);
    assert.match(lines[0]!, /warning: native cipher addon not built .*node:crypto engine will be used/);
    assert.equal(existsSync(join(pkg, 'native', 'build', 'Release', 'nbdcrypt_xts.node')), false);

    const r = runChild(pkg, join(pkg, 'dist', 'src'), env);
    assert.equal(r.engine, 'node');
    const warnings = r.stderr.trim().split('\n');
    assert.equal(warnings.length, 1, `one warning line, got:\n${r.stderr}`);
    assert.match(warnings[0]!, /native cipher engine unavailable .* using node:crypto/);
    checkCiphertext(r.ct);

    const t = runChild(pkg, join(pkg, 'dist', 'src'), env, TWOFISH_CBC);
    assert.equal(t.engine, 'node');
    checkCiphertext(t.ct, TWOFISH_CBC);
  } finally {
    dir.remove();
  }
});
