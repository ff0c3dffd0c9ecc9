/**
 * The LUKS2 commands end to end (`nbdcrypt format|dump|key|header`) with cryptsetup as the
 * judge: key files and standard input as in cryptsetup, the benchmark path with a short
 * --iter-time, dump output identical to luksDump (also --dump-volume-key), keyslot changes
 * cryptsetup agrees with, failures that leave the image byte-for-byte unchanged, and the
 * terminal prompt (through script(1)'s pty): no echo, asked twice, mismatch refused.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { requireTool, run, scratchDir } from '../../peers/tools.js';
import * as cs from '../../peers/cryptsetup.js';

const bin = join(process.cwd(), 'bin', 'nbdcrypt.js');
let dir: { path: string; remove: () => void };
const fastArgs = ['--pbkdf-memory', '32768', '--pbkdf-force-iterations', '4', '--pbkdf-parallel', '2'];

before(() => {
  cs.cryptsetup();
  dir = scratchDir('nbdcrypt-luks2-cli-');
});
after(() => dir.remove());

function nbdcrypt(args: string[], input?: string | Buffer): { stdout: string; stderr: string; status: number | null } {
  return run(process.execPath, [bin, ...args], { input, allowFail: true, timeoutMs: 120_000 });
}

function file(name: string, content?: string | Buffer): string {
  const p = join(dir.path, name);
  if (content !== undefined) writeFileSync(p, content, { mode: 0o600 });
  return p;
}

function sha(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

test('format --key-file - --size --iter-time (benchmark path): cryptsetup opens it and dumps match', () => {
  const img = file('bench.img');
  // A key with a trailing newline and a NUL: the whole input is the key, as in cryptsetup.
  const key = Buffer.from('correct horse\u0000battery\n');
  const r = nbdcrypt(['format', img, '--key-file', '-', '--size', '20M', '--iter-time', '300', '--label', 'cli vol'], key);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(statSync(img).size, 20 * 1024 * 1024);
  assert.equal(cs.testPassphrase(img, key), 0);
  assert.equal(cs.testPassphrase(img, 'correct horse\u0000battery'), null, 'the trailing newline is part of the key');
  const json = cs.luksDumpJson(img) as { keyslots: Record<string, { kdf: { type: string; time: number; memory: number; cpus: number } }> };
  const kdf = json.keyslots['0']!.kdf;
  assert.equal(kdf.type, 'argon2id');
  assert.ok(kdf.time >= 4 && kdf.memory >= 32 && kdf.memory <= 1048576 && kdf.cpus >= 1 && kdf.cpus <= 4, JSON.stringify(kdf));
  const dump = nbdcrypt(['dump', img]);
  assert.equal(dump.status, 0, dump.stderr);
  assert.equal(dump.stdout, cs.luksDump(img));
  const keyFile = file('bench.key', key);
  const mk = nbdcrypt(['dump', img, '--dump-volume-key', '--key-file', keyFile]);
  assert.equal(mk.status, 0, mk.stderr);
  assert.match(mk.stdout, /^MK dump:\t([0-9a-f]{2} ){16}$/m);
  assert.equal(mk.stdout, cs.luksDumpVolumeKeyText(img, key));
  const json2 = nbdcrypt(['dump', img, '--dump-json-metadata']);
  assert.deepEqual(JSON.parse(json2.stdout), json);
});

test('key add/change/remove through the CLI; cryptsetup agrees on every passphrase', () => {
  const img = file('keys.img');
  const k0 = file('k0', 'zero');
  const k1 = file('k1', 'one');
  const k2 = file('k2', 'two');
  const k3 = file('k3', 'three');
  assert.equal(nbdcrypt(['format', img, '--size', '20M', '--key-file', k0, ...fastArgs]).status, 0);
  assert.equal(nbdcrypt(['key', 'add', img, '--key-file', k0, '--new-key-file', k1, '--pbkdf', 'pbkdf2', '--pbkdf-force-iterations', '1000']).status, 0);
  const r = nbdcrypt(['key', 'add', img, '--key-file', '-', '--new-key-file', k2, '--key-slot', '7', ...fastArgs], 'one');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(nbdcrypt(['key', 'change', img, '--key-file', k1, '--new-key-file', k3, ...fastArgs]).status, 0);
  assert.equal(nbdcrypt(['key', 'remove', img, '--key-slot', '0', '--key-file', k2]).status, 0);
  const expect: Record<string, number | null> = { zero: null, one: null, two: 7, three: 1 };
  for (const [p, slot] of Object.entries(expect)) assert.equal(cs.testPassphrase(img, p), slot, p);
  assert.equal(nbdcrypt(['dump', img]).stdout, cs.luksDump(img));
  // Failures: wrong passphrase (exit 3), both keys from stdin (2), last slot without --force.
  const before = sha(img);
  assert.equal(nbdcrypt(['key', 'add', img, '--key-file', '-', '--new-key-file', k0], 'wrong').status, 3);
  assert.equal(nbdcrypt(['key', 'add', img, '--key-file', '-', '--new-key-file', '-'], 'two').status, 2);
  assert.equal(nbdcrypt(['key', 'remove', img, '--key-file', k3]).status, 0);
  assert.equal(sha(img) === before, false);
  const last = sha(img);
  const r2 = nbdcrypt(['key', 'remove', img, '--key-file', k2]);
  assert.equal(r2.status, 2);
  assert.match(r2.stderr, /last one/);
  assert.equal(sha(img), last);
});

test('header backup/restore through the CLI; a bad backup writes nothing', () => {
  const img = file('hdr.img');
  const k = file('hk', 'pw');
  assert.equal(nbdcrypt(['format', img, '--size', '20M', '--key-file', k, '--pbkdf', 'pbkdf2', '--pbkdf-force-iterations', '1000']).status, 0);
  const backup = join(dir.path, 'hdr.backup');
  assert.equal(nbdcrypt(['header', 'backup', img, backup]).status, 0);
  assert.equal(nbdcrypt(['header', 'backup', img, backup]).status, 5, 'an existing backup file is not overwritten');
  const good = sha(img);
  writeFileSync(img, Buffer.alloc(1 << 20, 0x55), { flag: 'r+' });
  const wrecked = sha(img);
  assert.equal(nbdcrypt(['dump', img]).status, 4);
  const junk = file('junk.backup', readFileSync(backup).subarray(0, 20000));
  const bad = nbdcrypt(['header', 'restore', img, junk]);
  assert.equal(bad.status, 4);
  assert.match(bad.stderr, /nothing was written/);
  assert.equal(sha(img), wrecked);
  assert.equal(nbdcrypt(['header', 'restore', img, backup]).status, 0);
  // The wrecked MiB also covered the keyslot area start and data is beyond 16 MiB: all restored.
  assert.equal(cs.testPassphrase(img, 'pw'), 0);
  assert.equal(sha(img), good);
});

test('format refuses a non-empty target (exit 5) and leaves it untouched', () => {
  const img = file('busy.img', '');
  truncateSync(img, 20 * 1024 * 1024);
  writeFileSync(img, 'XFSB', { flag: 'r+' });
  const before = sha(img);
  const r = nbdcrypt(['format', img, '--key-file', '-', '--pbkdf', 'pbkdf2', '--pbkdf-force-iterations', '1000'], 'x');
  assert.equal(r.status, 5);
  assert.match(r.stderr, /--force/);
  assert.equal(sha(img), before);
  assert.equal(nbdcrypt(['format', img, '--bogus']).status, 2);
  assert.equal(existsSync(join(dir.path, 'nope.img')), false);
  assert.equal(nbdcrypt(['format', join(dir.path, 'nope.img'), '--key-file', '-'], 'x').status !== 0, true);
});

test('terminal prompt: no echo, asked twice, a mismatch is refused', () => {
  const script = requireTool('script', 'bsdutils');
  const img = file('tty.img', '');
  truncateSync(img, 20 * 1024 * 1024);
  const cmd = (typed: string[]) =>
    run('sh', ['-c', `(sleep 4; ${typed.map((t) => `printf '${t}\\r'; sleep 0.5`).join('; ')}; sleep 3) | ${script} -qec "${process.execPath} ${bin} format ${img} --pbkdf pbkdf2 --pbkdf-force-iterations 1000" /dev/null`], {
      allowFail: true,
      timeoutMs: 60_000,
    });
  const bad = cmd(['s3cret', 'other']);
  assert.notEqual(bad.status, 0);
  assert.match(bad.stdout, /passphrases do not match/);
  assert.ok(readFileSync(img).subarray(0, 1 << 20).every((b) => b === 0), 'nothing written after a mismatch');
  const good = cmd(['s3cret', 's3cret']);
  assert.equal(good.status, 0, good.stdout);
  assert.match(good.stdout, /Enter passphrase for .*\n?.*Verify passphrase/s);
  assert.doesNotMatch(good.stdout, /s3cret/, 'the passphrase is not echoed');
  assert.equal(cs.testPassphrase(img, 's3cret'), 0);
});
