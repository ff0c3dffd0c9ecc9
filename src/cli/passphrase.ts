/**
 * Passphrases for the CLI, as cryptsetup takes them: `--key-file FILE` uses the whole file
 * as the key (no newline stripping; `-` means standard input, so `gpg -d key.asc | nbdcrypt
 * format --key-file - ...` works); otherwise a prompt on the terminal without echo (asked twice
 * for a new passphrase), or one line from standard input when it is not a terminal. The
 * passphrase is returned in a Buffer the caller wipes; it is never logged.
 * Reference: cryptsetup(8) "NOTES ON PASSPHRASE PROCESSING FOR LUKS".
 */
import { open } from 'node:fs/promises';
import { NbdcryptError } from '../errors.js';

/** cryptsetup's default --keyfile-size limit (8 MiB). */
export const MAX_KEY_FILE = 8 * 1024 * 1024;
/** cryptsetup's interactive passphrase limit. */
const MAX_TYPED = 512;

let stdinTaken = false;

async function readAll(stream: NodeJS.ReadableStream, what: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream) {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    total += b.length;
    if (total > MAX_KEY_FILE) throw new NbdcryptError('EUSAGE', `${what} is larger than ${MAX_KEY_FILE} bytes, the key file limit`);
    parts.push(b);
  }
  const out = Buffer.concat(parts);
  for (const p of parts) p.fill(0);
  return out;
}

/** The whole key file (or standard input for `-`). */
export async function readKeyFile(path: string): Promise<Buffer> {
  let key: Buffer;
  if (path === '-') {
    if (stdinTaken) throw new NbdcryptError('EUSAGE', 'standard input can supply only one key; use a file for the other');
    stdinTaken = true;
    key = await readAll(process.stdin, 'the key on standard input');
  } else {
    let fh;
    try {
      fh = await open(path, 'r');
    } catch (e) {
      throw new NbdcryptError('EUSAGE', `cannot read key file ${path} (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
    }
    try {
      const st = await fh.stat();
      if (st.isDirectory()) throw new NbdcryptError('EUSAGE', `key file ${path} is a directory; give the file that holds the passphrase`);
      if (st.isFile() && st.size > MAX_KEY_FILE) throw new NbdcryptError('EUSAGE', `key file ${path} is larger than ${MAX_KEY_FILE} bytes`);
      key = await readAll(fh.createReadStream({ autoClose: false }), `key file ${path}`);
    } catch (e) {
      if (e instanceof NbdcryptError) throw e;
      throw new NbdcryptError('EUSAGE', `cannot read key file ${path} (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
    } finally {
      await fh.close();
    }
  }
  if (key.length === 0) throw new NbdcryptError('EUSAGE', `the key file ${path === '-' ? '(standard input)' : path} is empty`);
  return key;
}

/** Bytes typed past the end of one answer (type-ahead), kept for the next prompt. */
let typeAhead: Buffer = Buffer.alloc(0);

/** One line typed on the terminal with echo off; Ctrl-C/Ctrl-D cancel. */
async function promptHidden(prompt: string): Promise<Buffer> {
  const stdin = process.stdin;
  stdin.setRawMode(true);
  process.stderr.write(prompt);
  const typed = Buffer.alloc(MAX_TYPED);
  let n = 0;
  try {
    return await new Promise<Buffer>((resolve, reject) => {
      /** Consumes bytes; true once the answer is complete (or cancelled). */
      const feed = (chunk: Buffer): boolean => {
        for (let i = 0; i < chunk.length; i++) {
          const c = chunk[i]!;
          if (c === 0x0d || c === 0x0a) {
            let rest = chunk.subarray(i + 1);
            if (c === 0x0d && rest[0] === 0x0a) rest = rest.subarray(1);
            typeAhead = Buffer.from(rest);
            resolve(Buffer.from(typed.subarray(0, n)));
            return true;
          }
          if (c === 0x03 || c === 0x04) {
            typeAhead = Buffer.alloc(0);
            reject(new NbdcryptError('EUSAGE', 'passphrase entry cancelled; nothing was changed'));
            return true;
          }
          if (c === 0x7f || c === 0x08) n = Math.max(0, n - 1);
          else if (n < MAX_TYPED) typed[n++] = c;
        }
        return false;
      };
      const pending = typeAhead;
      typeAhead = Buffer.alloc(0);
      const done = feed(pending);
      pending.fill(0);
      if (done) return;
      const onData = (chunk: Buffer) => {
        const finished = feed(chunk);
        chunk.fill(0);
        if (finished) {
          stdin.off('data', onData);
          stdin.pause();
        }
      };
      stdin.on('data', onData);
      stdin.resume();
    });
  } finally {
    typed.fill(0);
    stdin.setRawMode(false);
    process.stderr.write('\n');
  }
}

/** One line from a non-terminal standard input (the newline is not part of the passphrase). */
async function readLine(): Promise<Buffer> {
  if (stdinTaken) throw new NbdcryptError('EUSAGE', 'standard input can supply only one passphrase; use --key-file for the others');
  stdinTaken = true;
  const all = await readAll(process.stdin, 'standard input');
  const nl = all.indexOf(0x0a);
  const line = Buffer.from(all.subarray(0, nl < 0 ? all.length : nl));
  all.fill(0);
  return line;
}

export interface PassphraseRequest {
  /** `--key-file` value, if given. */
  keyFile?: string;
  /** Prompt text, e.g. "Enter passphrase for disk.img: ". */
  prompt: string;
  /** New passphrase: ask twice on a terminal and refuse a mismatch or an empty one. */
  confirm?: boolean;
}

/** Gets a passphrase from --key-file, the terminal or standard input. The caller wipes it. */
export async function getPassphrase(req: PassphraseRequest): Promise<Buffer> {
  if (req.keyFile !== undefined) return readKeyFile(req.keyFile);
  if (!process.stdin.isTTY) {
    const line = await readLine();
    if (line.length === 0) throw new NbdcryptError('EUSAGE', 'no passphrase on standard input; give one or use --key-file');
    return line;
  }
  const first = await promptHidden(req.prompt);
  if (first.length === 0) throw new NbdcryptError('EUSAGE', 'empty passphrase; nothing was changed');
  if (req.confirm) {
    const again = await promptHidden('Verify passphrase: ');
    const same = again.equals(first);
    again.fill(0);
    if (!same) {
      first.fill(0);
      throw new NbdcryptError('EUSAGE', 'passphrases do not match; nothing was changed');
    }
  }
  return first;
}

/**
 * Asks for an SSH secret (an identity file's passphrase, a password) on the terminal with
 * echo off. Resolves undefined when there is no terminal to ask, so authentication moves on
 * to its next method instead of waiting. ssh2 takes these as strings, so they cannot be wiped.
 */
export async function askSecretOnTerminal(prompt: string): Promise<string | undefined> {
  if (!process.stdin.isTTY) return undefined;
  const typed = await promptHidden(prompt);
  const secret = typed.toString('utf8');
  typed.fill(0);
  return secret.length > 0 ? secret : undefined;
}
