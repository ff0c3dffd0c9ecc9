/**
 * Our own OpenSSH known_hosts reader (ssh2 has none, and no well-kept npm parser exists):
 * plain and hashed (`|1|salt|hmac-sha1`) host fields, comma lists with `*`/`?` wildcards and
 * `!` negation, `[host]:port` for non-22 ports, and the `@revoked` marker. `@cert-authority`
 * lines are skipped: we do not accept host certificates, so a CA line can never vouch for a
 * plain key. Unknown or changed keys refuse the connection with EHOSTKEY, naming the
 * OpenSSH-style SHA256 fingerprint and the exact line to add; accept-new appends the key.
 * Spec: sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT", ssh_config(5) StrictHostKeyChecking.
 */
import { createHash, createHmac } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { NbdcryptError } from '../errors.js';
import { log } from '../log.js';

export interface KnownHostsEntry {
  marker?: 'revoked' | 'cert-authority';
  /** Plain patterns (comma list split), or undefined for a hashed entry. */
  patterns?: string[];
  hashed?: { salt: Buffer; hash: Buffer };
  keyType: string;
  /** Base64 of the key blob. */
  key: string;
  /** 1-based line number, for messages. */
  line: number;
}

export type HostKeyVerdict =
  | { status: 'ok' }
  | { status: 'unknown' }
  | { status: 'changed'; line: number }
  | { status: 'revoked'; line: number };

export function parseKnownHosts(text: string): KnownHostsEntry[] {
  const out: KnownHostsEntry[] = [];
  text.split('\n').forEach((raw, i) => {
    const fields = raw.trim().split(/\s+/);
    if (fields[0] === '' || fields[0]!.startsWith('#')) return;
    let marker: KnownHostsEntry['marker'];
    if (fields[0]!.startsWith('@')) {
      const m = fields.shift()!;
      if (m === '@revoked') marker = 'revoked';
      else if (m === '@cert-authority') marker = 'cert-authority';
      else return; // unknown marker: OpenSSH ignores the line too
    }
    if (fields.length < 3) return;
    const [hosts, keyType, key] = fields as [string, string, string];
    const entry: KnownHostsEntry = { marker, keyType, key, line: i + 1 };
    if (hosts.startsWith('|1|')) {
      const [, , salt, hash] = hosts.split('|');
      if (!salt || !hash) return;
      entry.hashed = { salt: Buffer.from(salt, 'base64'), hash: Buffer.from(hash, 'base64') };
    } else {
      entry.patterns = hosts.split(',').filter((p) => p !== '');
    }
    out.push(entry);
  });
  return out;
}

/** The name OpenSSH looks up: `host` on port 22, `[host]:port` otherwise. */
export function knownHostName(host: string, port: number): string {
  return port === 22 ? host.toLowerCase() : `[${host.toLowerCase()}]:${port}`;
}

function globMatch(pattern: string, s: string): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'i');
  return re.test(s);
}

/** OpenSSH match_hostname: any negated match wins (no match), else any positive match. */
export function matchPatternList(patterns: string[], name: string): boolean {
  let positive = false;
  for (const p of patterns) {
    if (p.startsWith('!')) {
      if (globMatch(p.slice(1), name)) return false;
    } else if (globMatch(p, name)) {
      positive = true;
    }
  }
  return positive;
}

export function entryMatchesHost(e: KnownHostsEntry, name: string): boolean {
  if (e.hashed) {
    const h = createHmac('sha1', e.hashed.salt).update(name).digest();
    return h.equals(e.hashed.hash);
  }
  return matchPatternList(e.patterns ?? [], name);
}

/** Key type named inside an SSH public key blob (first length-prefixed string). */
export function keyTypeOf(blob: Buffer): string {
  if (blob.length < 4) return 'unknown';
  const n = blob.readUInt32BE(0);
  return blob.toString('latin1', 4, 4 + Math.min(n, 64));
}

/** OpenSSH-style fingerprint: "SHA256:" + unpadded base64 of sha256(blob). */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

export function knownHostsLine(host: string, port: number, blob: Buffer): string {
  return `${knownHostName(host, port)} ${keyTypeOf(blob)} ${blob.toString('base64')}`;
}

/** Key types known for a host (to prefer them when negotiating, as OpenSSH does). */
export function knownKeyTypes(entries: KnownHostsEntry[], host: string, port: number): string[] {
  const name = knownHostName(host, port);
  return [...new Set(entries.filter((e) => !e.marker && entryMatchesHost(e, name)).map((e) => e.keyType))];
}

export function checkHostKey(entries: KnownHostsEntry[], host: string, port: number, blob: Buffer): HostKeyVerdict {
  const name = knownHostName(host, port);
  const b64 = blob.toString('base64');
  let changed: number | undefined;
  let ok = false;
  for (const e of entries) {
    if (e.marker === 'cert-authority' || !entryMatchesHost(e, name)) continue;
    if (e.marker === 'revoked') {
      if (e.key === b64) return { status: 'revoked', line: e.line };
      continue;
    }
    if (e.key === b64) ok = true;
    // A different key of the same type, or a host we only know under other key types.
    else changed ??= e.line;
  }
  if (ok) return { status: 'ok' };
  if (changed !== undefined) return { status: 'changed', line: changed };
  return { status: 'unknown' };
}

export interface VerifyOptions {
  knownHostsPath: string;
  host: string;
  port: number;
  acceptNew: boolean;
  /** The file's content when the caller has just read it (one read per connection). */
  knownText?: string;
}

/** Checks a server's host key blob; appends it when new and accept-new is on; throws EHOSTKEY otherwise. */
export function verifyHostKey(blob: Buffer, o: VerifyOptions): void {
  const text = o.knownText ?? (existsSync(o.knownHostsPath) ? readFileSync(o.knownHostsPath, 'utf8') : '');
  const v = checkHostKey(parseKnownHosts(text), o.host, o.port, blob);
  if (v.status === 'ok') return;
  const fp = fingerprint(blob);
  const line = knownHostsLine(o.host, o.port, blob);
  const who = knownHostName(o.host, o.port);
  if (v.status === 'revoked') {
    throw new NbdcryptError('EHOSTKEY', `the ${keyTypeOf(blob)} host key of ${who} (${fp}) is marked @revoked in ${o.knownHostsPath}:${v.line}; refusing to connect`);
  }
  if (v.status === 'changed') {
    throw new NbdcryptError(
      'EHOSTKEY',
      `the host key of ${who} has CHANGED (now ${keyTypeOf(blob)} ${fp}, ${o.knownHostsPath}:${v.line} has another); someone may be intercepting the link; if the change is expected, remove line ${v.line} and add: ${line}`,
    );
  }
  if (!o.acceptNew) {
    throw new NbdcryptError('EHOSTKEY', `the host key of ${who} is unknown (${keyTypeOf(blob)} ${fp}); verify it, then add this line to ${o.knownHostsPath} or use --accept-new-host-key: ${line}`);
  }
  mkdirSync(dirname(o.knownHostsPath), { recursive: true, mode: 0o700 });
  const sep = text.length > 0 && !text.endsWith('\n') ? '\n' : '';
  appendFileSync(o.knownHostsPath, `${sep}${line}\n`, { mode: 0o600 });
  log.warn(`permanently added the ${keyTypeOf(blob)} host key of ${who} (${fp}) to ${o.knownHostsPath}`);
}
