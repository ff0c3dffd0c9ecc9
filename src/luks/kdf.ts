/**
 * Key derivation for keyslots and digests: argon2id/argon2i (the native npm `argon2` with raw
 * output, @noble/hashes when it is missing or the passphrase is empty, which node-argon2
 * refuses) and PBKDF2 (hash-functions.ts: node:crypto, or @noble/hashes for hashes OpenSSL
 * lacks). `deriveKey` runs in this process; it is for parameters we chose ourselves
 * (benchmarks, new keyslots). `deriveKeyAbortable` runs the derivation in a child process that
 * is killed when the signal aborts: native argon2 and PBKDF2 run on libuv's thread pool, where
 * nothing can stop them, and a process whose pool is busy cannot even exit until the job
 * ends. Opening a volume uses it, because the cost comes from the header, which nbdcrypt does
 * not trust. Spec: RFC 9106 (argon2), RFC 8018 (PBKDF2).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { NbdcryptError } from '../errors.js';
import { pbkdf2 } from './hash-functions.js';
import type { Kdf } from './luks2-metadata.js';
import type { XtsEngineName } from '../crypt/xts-cipher.js';

type NativeArgon2 = typeof import('argon2');
let nativeArgon2: Promise<NativeArgon2 | undefined> | undefined;

function loadNativeArgon2(): Promise<NativeArgon2 | undefined> {
  nativeArgon2 ??= import('argon2').then(
    (m) => m,
    () => undefined,
  );
  return nativeArgon2;
}

/**
 * Which implementations keyslot work uses: argon2 from the native npm `argon2` (default) or
 * always from @noble/hashes, and the XTS engine of the keyslot area (default: defaultEngine()).
 * The CLI sets them from its environment switches (docs/environment.md).
 */
export interface KeyslotEngines {
  argon2?: 'native' | 'noble';
  xts?: XtsEngineName;
}

/** Raw KDF output of `length` bytes, computed in this process. Caller wipes it. */
export async function deriveKey(kdf: Kdf, passphrase: Buffer, length: number, engines: KeyslotEngines = {}): Promise<Buffer> {
  if (kdf.type === 'pbkdf2') {
    return pbkdf2(kdf.hash, passphrase, kdf.salt, kdf.iterations, length);
  }
  const native = engines.argon2 === 'noble' ? undefined : await loadNativeArgon2();
  if (native && passphrase.length > 0) {
    return native.hash(passphrase, {
      raw: true,
      type: kdf.type === 'argon2id' ? native.argon2id : native.argon2i,
      salt: kdf.salt,
      timeCost: kdf.time,
      memoryCost: kdf.memory,
      parallelism: kdf.cpus,
      hashLength: length,
      version: 0x13,
    });
  }
  const noble = await import('@noble/hashes/argon2.js');
  const fn = kdf.type === 'argon2id' ? noble.argon2idAsync : noble.argon2iAsync;
  const out = await fn(passphrase, kdf.salt, { t: kdf.time, m: kdf.memory, p: kdf.cpus, dkLen: length, version: 0x13, maxmem: 2 ** 32 - 1 });
  const buf = Buffer.from(out);
  out.fill(0);
  return buf;
}

/** The request line the child reads before the passphrase bytes (no secret in it). */
export interface KdfRequest {
  kdf: Omit<Kdf, 'salt'> & { salt: string };
  length: number;
  passphraseLength: number;
  argon2?: 'native' | 'noble';
}

export function encodeKdfRequest(kdf: Kdf, length: number, passphraseLength: number, argon2?: 'native' | 'noble'): string {
  return JSON.stringify({ kdf: { ...kdf, salt: kdf.salt.toString('base64') }, length, passphraseLength, argon2 } satisfies KdfRequest);
}

export function decodeKdfRequest(line: string): { kdf: Kdf; length: number; passphraseLength: number; argon2?: 'native' | 'noble' } {
  const r = JSON.parse(line) as KdfRequest;
  return { kdf: { ...r.kdf, salt: Buffer.from(r.kdf.salt, 'base64') } as Kdf, length: r.length, passphraseLength: r.passphraseLength, argon2: r.argon2 };
}

const childScript = fileURLToPath(new URL('./kdf-child.js', import.meta.url));

/** The error an aborted derivation rejects with. */
export function kdfInterrupted(): NbdcryptError {
  return new NbdcryptError('EINTR', 'interrupted while deriving the key; nothing was changed');
}

/**
 * `deriveKey` in a child process that `signal` kills (SIGKILL: the child has nothing to clean
 * up and must not finish a long derivation first). Without a signal it runs in this process.
 * The passphrase goes to the child over a pipe, the key comes back over another; neither is
 * written anywhere else. Caller wipes the result.
 */
export function deriveKeyAbortable(kdf: Kdf, passphrase: Buffer, length: number, signal?: AbortSignal, engines: KeyslotEngines = {}): Promise<Buffer> {
  if (!signal) return deriveKey(kdf, passphrase, length, engines);
  if (signal.aborted) return Promise.reject(kdfInterrupted());
  return new Promise<Buffer>((resolve, reject) => {
    const child: ChildProcess = spawn(process.execPath, [childScript], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    let settled = false;
    const finish = (e: Error | undefined, key?: Buffer): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      if (e) {
        for (const b of out) b.fill(0);
        reject(e);
      } else resolve(key!);
    };
    const onAbort = (): void => {
      child.kill('SIGKILL');
      finish(kdfInterrupted());
    };
    signal.addEventListener('abort', onAbort, { once: true });
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => (err += b.toString('utf8')));
    child.on('error', (e) => finish(new NbdcryptError('ENOTSUP', `cannot start the key derivation process (${e.message})`)));
    child.on('close', (code, sig) => {
      const key = Buffer.concat(out);
      for (const b of out) b.fill(0);
      if (code === 0 && key.length === length) return finish(undefined, key);
      key.fill(0);
      const why = err.trim().split('\n').pop() || (sig ? `killed by ${sig}` : `exit status ${code}`);
      finish(new Error(why));
    });
    // A child that died early closes its stdin; the 'close' handler reports why.
    child.stdin!.on('error', () => undefined);
    child.stdin!.write(encodeKdfRequest(kdf, length, passphrase.length, engines.argon2) + '\n');
    child.stdin!.end(passphrase);
  });
}
