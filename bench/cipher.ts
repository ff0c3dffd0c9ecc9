/**
 * Cipher micro-benchmark (tinybench): MB/s of the XTS engines at 512 and 4096-byte sectors,
 * one thread, next to `openssl speed -evp aes-256-xts` measured in the same run, with the
 * ratio; then encrypt and decrypt MB/s of every other cipher spec (aes, twofish, serpent ×
 * xts-plain64, cbc-essiv:sha256, cbc-plain64, cbc-plain) at 4096-byte sectors. The suite
 * itself lives in src/cli/bench/cipher.ts so that the installed CLI (`nbdcrypt bench cipher`)
 * runs the very same code; this entry point takes the same options.
 * Run: npx tsc -p . && node dist/bench/cipher.js [--seconds N] [--json] [--reference] [--ciphers LIST] [--fallback]
 */
import { help, run } from '../src/cli/bench/cipher.js';
import { readEnvironment } from '../src/cli/environment.js';

const argv = process.argv.slice(2);
if (argv.includes('--help') || argv.includes('-h')) {
  process.stdout.write(help);
} else {
  try {
    process.exitCode = await run(argv, readEnvironment());
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exitCode = 2;
  }
}
