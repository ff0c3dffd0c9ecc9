/**
 * Cipher micro-benchmark (tinybench): MB/s of the XTS engines at 512 and 4096-byte sectors,
 * one thread, next to `openssl speed -evp aes-256-xts` measured in the same run, with the
 * ratio. The suite itself lives in src/cli/bench/cipher.ts so that the installed CLI
 * (`nbdcrypt bench cipher`) runs the very same code; this entry point takes the same options.
 * Run: npx tsc -p . && node dist/bench/cipher.js [--seconds N] [--json] [--reference]
 */
import { run } from '../src/cli/bench/cipher.js';

process.exitCode = await run(process.argv.slice(2));
