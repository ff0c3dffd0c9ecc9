/**
 * The child process of `deriveKeyAbortable` (kdf.ts): reads one JSON request line and then
 * exactly the passphrase bytes from standard input, writes the raw derived key to standard
 * output and exits 0; on failure one line on standard error and exit 1. It is a separate
 * process so that the parent can kill a derivation whose cost a hostile header chose.
 */
import { decodeKdfRequest, deriveKey } from './kdf.js';

async function readStdin(): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of process.stdin) parts.push(chunk as Buffer);
  const all = Buffer.concat(parts);
  for (const p of parts) p.fill(0);
  return all;
}

async function child(): Promise<void> {
  const input = await readStdin();
  const nl = input.indexOf(0x0a);
  if (nl < 0) throw new Error('no request line');
  const req = decodeKdfRequest(input.subarray(0, nl).toString('utf8'));
  const passphrase = input.subarray(nl + 1);
  if (passphrase.length !== req.passphraseLength) throw new Error('passphrase truncated');
  const key = await deriveKey(req.kdf, passphrase, req.length, { argon2: req.argon2 });
  input.fill(0);
  process.stdout.write(key, () => {
    key.fill(0);
    process.exit(0);
  });
}

child().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
