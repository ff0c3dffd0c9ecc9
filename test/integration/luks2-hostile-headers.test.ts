/**
 * Headers nobody should trust, and other inputs a user can reach, through the CLI: a keyslot
 * asking for an absurd KDF cost is refused at once (and, when allowed, SIGTERM still stops
 * the derivation), a data segment beyond the device is a header error and not a crash, a key
 * file that is a directory is a usage error; every failure is one line with its documented
 * exit status and no stack trace. The images are made by cryptsetup, then edited with valid
 * checksums so only the named field is wrong.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync, truncateSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { run, scratchDir } from '../../peers/tools.js';
import * as cs from '../../peers/cryptsetup.js';
import { editMetadata, flipByte, obj } from '../luks/craft-header.js';

const bin = join(process.cwd(), 'bin', 'nbdcrypt.js');
const MiB = 1024 * 1024;
let dir: { path: string; remove: () => void };
let keyFile: string;

before(() => {
  cs.cryptsetup();
  dir = scratchDir('nbdcrypt-hostile-');
  keyFile = join(dir.path, 'key');
  writeFileSync(keyFile, 'pass', { mode: 0o600 });
});
after(() => dir.remove());

function nbdcrypt(args: string[], env: NodeJS.ProcessEnv = process.env): { stdout: string; stderr: string; status: number | null } {
  return run(process.execPath, [bin, ...args], { allowFail: true, timeoutMs: 120_000, env });
}

/** A fresh 18 MiB cryptsetup image (argon2id, 32 MiB, t=4) named `name`. */
function image(name: string): string {
  const img = join(dir.path, name);
  writeFileSync(img, '');
  truncateSync(img, 18 * MiB);
  cs.luksFormat(img, 'pass');
  return img;
}

/** One line on standard error apart from the PR_SET_IO_FLUSHER warning, and no stack trace. */
function assertOneLine(stderr: string, pattern: RegExp): void {
  const lines = stderr.split('\n').filter((l) => l !== '' && !l.includes('PR_SET_IO_FLUSHER'));
  assert.equal(lines.length, 1, stderr);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(stderr, /^\s+at /m);
}

test('a keyslot asking for argon2 time 4294967295 is refused at once (exit 4), naming the cost and the override', async () => {
  const img = image('huge-time.img');
  await editMetadata(img, (raw) => {
    obj(raw, 'keyslots', '0', 'kdf').time = 4294967295;
  });
  for (const args of [['serve', img, '--key-file', keyFile, '--read-only'], ['dump', img, '--dump-volume-key', '--key-file', keyFile], ['key', 'add', img, '--key-file', keyFile, '--new-key-file', keyFile]]) {
    const r = nbdcrypt(args);
    assert.equal(r.status, 4, `${args[0]}: ${r.stderr}`);
    assertOneLine(r.stderr, /error: keyslot 0 asks for an unreasonable key derivation cost \(argon2id with time 4294967295 × memory 32768 KiB.*--allow-costly-kdf/);
  }
  // dump without unlocking shows the header as it is.
  const d = nbdcrypt(['dump', img]);
  assert.equal(d.status, 0, d.stderr);
  assert.match(d.stdout, /Time cost:  4294967295/);
});

test('a digest asking for 2^32-1 PBKDF2 iterations is refused too', async () => {
  const img = image('huge-digest.img');
  await editMetadata(img, (raw) => {
    obj(raw, 'digests', '0').iterations = 4294967295;
  });
  const r = nbdcrypt(['serve', img, '--key-file', keyFile]);
  assert.equal(r.status, 4, r.stderr);
  assertOneLine(r.stderr, /digest 0 asks for an unreasonable key derivation cost \(pbkdf2-sha256 with 4294967295 iterations/);
  // Allowed, it is still one line: Node's PBKDF2 cannot count past 2^31 − 1 (exit 1, unsupported).
  const allowed = nbdcrypt(['dump', img, '--dump-volume-key', '--key-file', keyFile, '--allow-costly-kdf']);
  assert.equal(allowed.status, 1, allowed.stderr);
  assertOneLine(allowed.stderr, /error: digest 0: pbkdf2-sha256 with 4294967295 iterations failed here/);
});

test('with --allow-costly-kdf, SIGTERM during the key derivation ends serve (exit 0) instead of being ignored', async () => {
  const img = image('huge-time-allowed.img');
  await editMetadata(img, (raw) => {
    obj(raw, 'keyslots', '0', 'kdf').time = 4294967295;
  });
  const child = spawn(process.execPath, [bin, 'serve', img, '--key-file', keyFile, '--allow-costly-kdf', '--listen', `unix:${join(dir.path, 's.sock')}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  // The derivation starts once the header is read; give it time to be well under way.
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(child.exitCode, null, `serve ended before SIGTERM: ${stderr}`);
  child.kill('SIGTERM');
  // Liveness bound, not a timing assertion: before the fix the process ran for hours.
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const end = await exited;
  clearTimeout(timer);
  assert.deepEqual(end, { code: 0, signal: null }, stderr);
  assert.match(stderr, /SIGTERM: interrupted while opening .*; nothing was served/);
});

test('a data segment offset beyond the device: serve exits 4 with one line; dump shows the header (exit 0)', async () => {
  const img = image('far-segment.img');
  await editMetadata(img, (raw) => {
    obj(raw, 'segments', '0').offset = '1099511627776';
  });
  const r = nbdcrypt(['serve', img, '--key-file', keyFile, '--read-only']);
  assert.equal(r.status, 4, r.stderr);
  assertOneLine(r.stderr, /error: LUKS2 data segment starts at byte 1099511627776 \(segments\.0\.offset\), but the device has only 18874368 bytes/);
  const d = nbdcrypt(['dump', img]);
  assert.equal(d.status, 0, d.stderr);
  assert.match(d.stdout, /offset: 1099511627776 \[bytes\]/);
});

test('--key-file naming a directory is a usage error (exit 2), one line', () => {
  const img = image('keydir.img');
  const keyDir = join(dir.path, 'keys');
  mkdirSync(keyDir);
  for (const args of [['serve', img, '--key-file', keyDir], ['dump', img, '--dump-volume-key', '--key-file', keyDir]]) {
    const r = nbdcrypt(args);
    assert.equal(r.status, 2, r.stderr);
    assertOneLine(r.stderr, new RegExp(`error: key file ${keyDir} is a directory`));
  }
  // The debug switch adds the stack trace.
  const debug = nbdcrypt(['dump', img, '--dump-volume-key', '--key-file', keyDir], { ...process.env, NBDCRYPT_DEBUG: '1' });
  assert.equal(debug.status, 2, debug.stderr);
  assert.match(debug.stderr, /key file .* is a directory[^]*\n\s+at readKeyFile /);
});

test('a damaged keyslot area: the message says the key material may be damaged (exit 3)', () => {
  const img = image('bad-area.img');
  const bytes = readFileSync(img);
  bytes[0x8000 + 1000]! ^= 0xff; // keyslot 0's AF material
  writeFileSync(img, bytes);
  const r = nbdcrypt(['dump', img, '--dump-volume-key', '--key-file', keyFile]);
  assert.equal(r.status, 3, r.stderr);
  assertOneLine(r.stderr, /wrong passphrase for keyslot 0; no data was changed \(if the passphrase is right, the key material of keyslot 0 may be damaged: restore a header backup\)/);
});

test('a damaged primary header: dump and serve --read-only warn in one line; a damaged secondary is named as damaged', async () => {
  const img = image('bad-primary.img');
  await flipByte(img, 200);
  const d = nbdcrypt(['dump', img]);
  assert.equal(d.status, 0, d.stderr);
  assertOneLine(d.stderr, /warn: LUKS2 primary header: checksum mismatch; the header is damaged; using the secondary copy/);
  const j = nbdcrypt(['dump', img, '--dump-json-metadata']);
  assert.equal(j.status, 0, j.stderr);
  assert.match(j.stderr, /warn: LUKS2 primary header: checksum mismatch/);
  const before = readFileSync(img);
  const sock = join(dir.path, 'ro.sock');
  const child = spawn(process.execPath, [bin, 'serve', img, '--key-file', keyFile, '--read-only', '--listen', `unix:${sock}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  let stdout = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  for (let i = 0; i < 600 && !stdout.includes('listening on') && child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 100));
  child.kill('SIGTERM');
  assert.equal(await exited, 0, stderr);
  assert.match(stderr, /warn: LUKS2 primary header: checksum mismatch; the header is damaged; using the secondary copy/);
  assert.ok(readFileSync(img).equals(before), 'a read-only serve writes nothing');

  // Secondary damaged in its metadata, primary gone: "damaged (why)", not "not found".
  const img2 = image('bad-both.img');
  await editMetadata(img2, (raw) => {
    obj(raw, 'config').json_size = '1';
  });
  const r = nbdcrypt(['dump', img2]);
  assert.equal(r.status, 4, r.stderr);
  assertOneLine(r.stderr, /LUKS2 secondary header: metadata: config\.json_size 1 does not match the binary header/);
  assert.doesNotMatch(r.stderr, /not found/);
});

test('header backup --force overwrites an existing file; without it exit 5', () => {
  const img = image('backup.img');
  const file = join(dir.path, 'backup.hdr');
  writeFileSync(file, 'old');
  const refused = nbdcrypt(['header', 'backup', img, file]);
  assert.equal(refused.status, 5, refused.stderr);
  assertOneLine(refused.stderr, /already exists/);
  const forced = nbdcrypt(['header', 'backup', img, file, '--force']);
  assert.equal(forced.status, 0, forced.stderr);
  assert.ok(readFileSync(file).subarray(0, 16 * MiB).equals(readFileSync(img).subarray(0, 16 * MiB)));
  // cryptsetup reads it back.
  const copy = join(dir.path, 'restored.img');
  writeFileSync(copy, readFileSync(img));
  cs.luksHeaderRestore(copy, file);
  assert.equal(cs.testPassphrase(copy, 'pass'), 0);
  assert.ok(existsSync(file));
});

test('a listen path that is not a socket exits 8 (cannot listen), listed in --help', () => {
  const img = image('listen.img');
  const notSock = join(dir.path, 'plain-file');
  writeFileSync(notSock, '');
  const r = nbdcrypt(['serve', img, '--key-file', keyFile, '--listen', `unix:${notSock}`]);
  assert.equal(r.status, 8, r.stderr);
  assertOneLine(r.stderr, /cannot listen on .*: it exists and is not a socket/);
  for (const cmd of ['serve', 'format', 'dump', 'key', 'header', 'demo']) {
    const h = nbdcrypt([cmd, '--help']);
    assert.match(h.stdout, /^Exit status:\n  0  /m, cmd);
  }
  assert.match(nbdcrypt(['serve', '--help']).stdout, /^  8  cannot listen/m);
  assert.match(nbdcrypt(['header', '--help']).stdout, /^  5  refusing to overwrite/m);
});
