#!/usr/bin/env node
// Builds the optional native cipher addon (native/) with the node-gyp that ships with npm,
// against Node's own headers (no download) and the OpenSSL that the node binary exports.
// Run by `npm install` / `npm ci` (package.json "install"). A failed build is not an install
// failure: print one warning line and exit 0, and nbdcrypt uses the node:crypto engine.
// NBDCRYPT_SKIP_NATIVE=1 skips the build. Full build output: native/build/build-native.log.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const native = join(root, 'native');
const logPath = join(native, 'build', 'build-native.log');

function warn(why) {
  console.warn(`nbdcrypt: warning: native cipher addon not built (${why}); the slower node:crypto engine will be used`);
  process.exit(0);
}

if (process.env.NBDCRYPT_SKIP_NATIVE === '1') warn('NBDCRYPT_SKIP_NATIVE=1');

// npm exports the path of its bundled node-gyp to lifecycle scripts; else look beside node.
const prefix = resolve(dirname(process.execPath), '..');
const candidates = [
  process.env.npm_config_node_gyp,
  join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  join(dirname(process.execPath), 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
];
const gyp = candidates.find((p) => p && existsSync(p));
if (!gyp) warn('node-gyp not found next to npm');

const args = [gyp, 'rebuild', `--directory=${native}`];
// Node's own headers (include/node has node_api.h and openssl/) avoid a header download.
if (existsSync(join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);
const r = spawnSync(process.execPath, args, { cwd: native, encoding: 'utf8', timeout: 300_000 });
const output = `${r.stdout ?? ''}${r.stderr ?? ''}`;
try {
  mkdirSync(dirname(logPath), { recursive: true });
  writeFileSync(logPath, `$ node ${args.join(' ')}\n${output}`);
} catch {
  // the log is a convenience only
}
if (r.status !== 0) {
  const errLine = output.split('\n').find((l) => /error|not found|No such file/i.test(l) && !/^gyp info/.test(l)) ?? `exit status ${r.status ?? r.signal}`;
  warn(`${errLine.trim().slice(0, 160)}; see native/build/build-native.log`);
}
try {
  createRequire(import.meta.url)(join(native, 'build', 'Release', 'nbdcrypt_xts.node'));
} catch (e) {
  warn(`built but does not load: ${String(e instanceof Error ? e.message : e).split('\n')[0]}`);
}
console.log('nbdcrypt: native cipher addon built (native/build/Release/nbdcrypt_xts.node)');
